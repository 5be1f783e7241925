-- abandon: the caller hung up (or Twilio reports the call no longer live) before being
-- connected. A waiting call leaves its queue; an offered call's agent is released at once,
-- with no miss counted. A connected call is left alone (its end is `complete`), and so is a
-- callback request: the caller hanging up (reason 'hangup') is expected, the call keeps its
-- place in line, and once offered its own legs (agent first, then the customer) carry it.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  reason (e.g. 'hangup', 'call_gone')
-- Returns  {'abandoned', prior_state} | {'stale', state}
-- @include common.lua

local sid = ARGV[1]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
local s = c.state
if c.kind == 'callback' and ARGV[2] == 'hangup' then
  -- the caller's own leg ended after asking for a callback: expected; the callback goes on
  -- (on its own legs) whatever state it is in, so report it as a callback and change nothing
  return { 'stale', 'callback' }
end
if s == 'waiting' then
  redis.call('ZREM', k_waiting(c.queue), sid)
elseif s == 'offered' then
  redis.call('ZREM', K_OFFERS, sid)
  local a = hgetall(k_agent(c.agent))
  if a then agent_release(c.agent, a, 0) end
else
  return { 'stale', s }
end
call_finish(sid, 'abandoned')
event('abandoned', { 'call', sid, 'queue', c.queue, 'from_state', s, 'reason', ARGV[2],
  'waited_ms', NOW - num(c.entered_ms, NOW) })
return { 'abandoned', s }
