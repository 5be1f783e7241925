-- complete: a connected call ended. The agent starts the queue's wrap-up (or takes a deferred
-- paused/offline). Also accepts a call still marked offered, since Twilio may report the
-- end of the <Dial> before the agent leg's 'answered' callback arrives.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- Returns  {'completed', agent} | {'stale', state}
-- @include common.lua

local sid = ARGV[1]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'connected' and c.state ~= 'offered' then return { 'stale', c.state } end
local id = c.agent
redis.call('ZREM', K_OFFERS, sid)
local answered = num(c.answered_ms, NOW)
if c.state == 'offered' then redis.call('HSET', k_call(sid), 'answered_ms', NOW) end
call_finish(sid, 'completed')
local cfg = queue_cfg(c.queue) or {}
local wrapup = num(cfg.wrapup_ms, 0)
-- running mean handle time (talk + wrap-up), the basis of the estimated wait
local handle = NOW - answered + wrapup
local aht = num(redis.call('HGET', k_queue(c.queue), 'aht_ms'), handle)
redis.call('HSET', k_queue(c.queue), 'aht_ms', math.floor(aht * 0.9 + handle * 0.1))
local a = hgetall(k_agent(id))
if a then
  if c.state == 'offered' then
    agent_set(id, a, { misses = 0, handled = num(a.handled, 0) + 1 })
  end
  agent_release(id, a, wrapup)
end
event('completed', { 'call', sid, 'agent', id, 'queue', c.queue, 'talk_ms', NOW - answered })
return { 'completed', id }
