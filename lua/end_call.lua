-- end_call: an operator ends a call callq still holds open (its end never reached callq and
-- Twilio cannot be asked, or it must simply stop). The call leaves every line and lease; an
-- agent holding it is released at once with no wrap-up and no miss. A connected call ends
-- `completed`, any other `abandoned`, with reason 'ended_by_operator'; the event names who.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  who asked (for the audit trail)
-- Returns  {'ended', prior_state} | {'stale', state}
-- @include calls.lua

local sid, who = ARGV[1], ARGV[2]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
local s = c.state
if s == 'completed' or s == 'abandoned' or s == 'overflowed' or s == 'callback_failed' then
  return { 'stale', s }
end
local final = 'abandoned'
if s == 'connected' then final = 'completed' end
call_finish(sid, c, final, 'ended_by_operator')
if s == 'offered' or s == 'connected' then
  -- its agent, or every agent a ring_all offer still rings
  for _, id in ipairs(call_agents(c)) do
    local a = hgetall(k_agent(id))
    if a then agent_release(id, a, 0) end
  end
end
event('ended', { 'call', sid, 'queue', c.queue, 'from_state', s, 'agent', c.agent or '',
  'by', who })
return { 'ended', s }
