-- set_agent_status: the agent (or a supervisor) asks for available, paused or offline.
-- While the agent holds a call, paused/offline is recorded and applied when the call ends.
-- Going available during wrap-up ends the wrap-up early.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  agent id
-- ARGV[2]  requested status: available | paused | offline
-- ARGV[3]  reason (free text, may be empty)
-- Returns  {'ok', status} | {'deferred', requested} | {'unknown'}
-- @include agents.lua

local id, want, reason = ARGV[1], ARGV[2], ARGV[3]
local a = hgetall(k_agent(id))
if a == nil then return { 'unknown' } end
if num(a.active, 0) > 0 then
  if want == 'available' then
    agent_set(id, a, { pending = '', pending_reason = '' })
    return { 'ok', a.status }
  end
  agent_set(id, a, { pending = want, pending_reason = reason })
  remove_ready(id, a)
  if a.status == 'available' then agent_set(id, a, { status = 'busy' }) end
  event('agent', { 'agent', id, 'status', a.status, 'reason', 'deferred ' .. want })
  return { 'deferred', want }
end
agent_set(id, a, { misses = 0, pending = '', pending_reason = '' })
agent_settle(id, a, want, 0, reason)
return { 'ok', a.status }
