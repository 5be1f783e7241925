-- delete_agent: remove an agent that holds no call.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  agent id
-- Returns  {'deleted'} | {'unknown'} | {'busy', active}  (busy: on a call, nothing changed)
-- @include agents.lua

local id = ARGV[1]
local a = hgetall(k_agent(id))
if a == nil then return { 'unknown' } end
if num(a.active, 0) > 0 then return { 'busy', a.active } end
remove_ready(id, a)
count_agent(a.queues, agent_bucket(a), '-1')
redis.call('ZREM', K_WRAPUP, id)
redis.call('ZREM', K_HEARTBEATS, id)
redis.call('DEL', k_alive(id), k_agent(id))
redis.call('SREM', K_AGENTS, id)
event('agent', { 'agent', id, 'status', 'deleted', 'reason', '' })
return { 'deleted' }
