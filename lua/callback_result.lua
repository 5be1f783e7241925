-- callback_result: the customer leg of a callback did not connect. The agent, who did their
-- part, is free (no miss) once their own leg ends: until then their device is still on that
-- call, playing its last words. They wait in `wrapup` marked `winding_down`, which the agent
-- leg's `completed` callback ends (`complete`), or ARGV[6] (at least WIND_DOWN_MS) at the
-- latest if that callback never comes. The call goes back to `callback` and rejoins
-- its line at its original rank after the queue's retry delay, until the queue's number of
-- retries is spent; then, or at once when Twilio refused the number for good ('refused'),
-- it ends as `callback_failed` with the reason.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid (the caller's original call)
-- ARGV[2]  agent id the offer went to
-- ARGV[3]  attempt (the offer's number)
-- ARGV[4]  outcome: no-answer | busy | failed | canceled | refused
-- ARGV[5]  reason for the record (e.g. 'no-answer', 'twilio_21211')
-- ARGV[6]  ms the agent's leg still plays before it ends ('' or 0 when it has ended)
-- Returns  {'retry', due_ms, queue} | {'failed', queue} | {'stale', state}
-- @include calls.lua

local sid, id, attempt, outcome, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.kind ~= 'callback' or not is_current_offer(c, id, attempt) then
  return { 'stale', c.state }
end
local cfg = queue_cfg(c.queue) or {}
local tries = num(c.callback_tries, 0) + 1
local result
if outcome ~= 'refused' and tries <= setting(cfg, 'callback_retries', 2) then
  local due = NOW + setting(cfg, 'callback_retry_delay_ms', 300000)
  redis.call('ZREM', K_OFFERS, sid)
  redis.call('ZREM', K_CONNECTED, sid)
  redis.call('HSET', k_call(sid), 'state', 'callback', 'agent', '', 'phase', '',
    'callback_tries', tries, 'last_reason', reason)
  redis.call('ZADD', K_RETRY, due, sid)
  event('callback_retry', { 'call', sid, 'queue', c.queue, 'agent', id, 'reason', reason,
    'tries', tries })
  result = { 'retry', int(due), c.queue }
else
  redis.call('HSET', k_call(sid), 'callback_tries', tries)
  call_finish(sid, c, 'callback_failed', reason)
  event('callback_failed', { 'call', sid, 'queue', c.queue, 'agent', id, 'reason', reason,
    'tries', tries })
  result = { 'failed', c.queue }
end
local a = hgetall(k_agent(id))
if a then
  agent_release(id, a, math.max(num(ARGV[6], 0), WIND_DOWN_MS))
  if a.status == 'wrapup' then agent_set(id, a, { winding_down = sid .. ':' .. attempt }) end
end
return result
