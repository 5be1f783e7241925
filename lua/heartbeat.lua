-- heartbeat: an agent's desktop says it is alive. Refreshes the TTL key; an agent whose
-- device is not registered stays out of every ready set. An agent taken offline because its
-- heartbeat lapsed comes back (available) with the next heartbeat.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  agent id
-- ARGV[2]  TTL, ms
-- ARGV[3]  device registered: '1' or '0'
-- Returns  {'ok', status} | {'unknown'}
-- @include common.lua

local id = ARGV[1]
local a = hgetall(k_agent(id))
if a == nil then return { 'unknown' } end
local ttl = tonumber(ARGV[2])
redis.call('SET', k_alive(id), ARGV[3], 'PX', ttl)
redis.call('ZADD', K_HEARTBEATS, NOW + ttl, id)
if a.status == 'offline' and a.reason == 'heartbeat' then
  agent_settle(id, a, 'available', 0, '')
  return { 'ok', a.status }
end
if a.pending == 'offline' and a.pending_reason == 'heartbeat' then
  agent_set(id, a, { pending = '', pending_reason = '' })
end
if refresh_ready(id, a) then wake() end
return { 'ok', a.status }
