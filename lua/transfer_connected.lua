-- transfer_connected: the agent on a connected call sends the caller on, to a queue (another,
-- or the same) or to a named agent. The call is waiting again, in the target queue at the
-- rank it had (unless that queue gives transferred calls a new place at the back), and with
-- a named agent pinned to it: claim offers it to that agent only, for PIN_MS at most and one
-- offer, then to anyone who may take it. The first agent is released into its queue's wrap-up
-- as after a completed call (talk time counted).
--
-- The caller's leg is still in the first agent's <Dial>: when the agent hangs up, the <Dial>'s
-- end (dial_result) finds the call waiting and holds the caller in the target queue; an offer
-- made before that redirects the caller straight to the next agent.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  the agent asking (the call must be connected to it)
-- ARGV[3]  target queue
-- ARGV[4]  target agent ('' none)
-- Returns  {'transferred', from_queue} | {'stale', state} | {'not_yours'} | {'unknown_queue'}
--          | {'unknown_agent'} (the last four change nothing)
-- @include calls.lua

-- How long a call waits for the agent it was transferred to before anyone may take it.
local PIN_MS = 60000

local sid, id, to, target = ARGV[1], ARGV[2], ARGV[3], ARGV[4] or ''
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'connected' or c.kind == 'callback' then
  if c.state == 'connected' then return { 'stale', 'callback' } end
  return { 'stale', c.state }
end
if c.agent ~= id then return { 'not_yours' } end
local tcfg = queue_cfg(to)
if tcfg == nil then return { 'unknown_queue' } end
if target ~= '' and (target == id or redis.call('EXISTS', k_agent(target)) == 0) then
  return { 'unknown_agent' }
end

-- the first agent: done with the call, into wrap-up, talk time counted
local cfg = queue_cfg(c.queue) or {}
local answered = num(c.answered_ms, NOW)
local a = hgetall(k_agent(id))
if a then
  local fields = {}
  fields['tt:' .. c.queue] = faded_plus(a['tt:' .. c.queue],
    math.max(NOW - answered, 1) / 1000, cfg)
  agent_release(id, a, setting(cfg, 'wrapup_ms', 0), fields)
end

local rank = num(c.rank, NOW)
if tcfg.transfer_rank == 'new' then rank = NOW end
redis.call('ZREM', K_CONNECTED, sid)
redis.call('HSET', k_call(sid), 'state', 'waiting', 'queue', to, 'agent', '', 'phase', '',
  'rank', int(rank), 'transferred_ms', NOW, 'rang', ',' .. id .. ',', 'pinned', target,
  'pinned_until_ms', target ~= '' and int(NOW + PIN_MS) or '')
redis.call('ZADD', k_waiting(to), rank, sid)
wake()
event('transferred', { 'call', sid, 'queue', to, 'from_queue', c.queue, 'agent', id,
  'to_agent', target, 'talk_ms', NOW - answered })
return { 'transferred', c.queue }
