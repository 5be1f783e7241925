-- heartbeat: an agent's desktop says it is alive. Refreshes the TTL key and the agent's
-- presence; an agent whose device is not registered stays out of every ready set. Presence
-- never changes the status the agent chose: a paused agent stays paused, an available one
-- becomes offerable again. The device flag is mirrored in the agent hash (`device`) so the
-- queue counters can tell a ready agent from one whose device is gone. A beat that changes
-- nothing but the deadline (online already, same device) costs two writes and one read.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  agent id
-- ARGV[2]  TTL, ms
-- ARGV[3]  device registered: '1' or '0'
-- ARGV[4]  the token generation the agent's token carries ('' or absent: not checked); a
--          different one than the agent's `token_gen` means the token was revoked
-- Returns  {'ok', status} | {'unknown'} | {'revoked'} (the last two change nothing)
-- @include agents.lua

local id = ARGV[1]
local v = redis.call('HMGET', k_agent(id), 'status', 'online', 'device', 'token_gen')
if not v[1] then return { 'unknown' } end
local was = { status = v[1], online = v[2] or nil, device = v[3] or nil,
  token_gen = v[4] or nil }
local gen = ARGV[4] or ''
if gen ~= '' and was.token_gen ~= gen then return { 'revoked' } end
local ttl = tonumber(ARGV[2])
redis.call('SET', k_alive(id), ARGV[3], 'PX', ttl)
redis.call('ZADD', K_HEARTBEATS, int(NOW + ttl), id)
-- the usual beat: online already, same device. Every change of status, calls, queues or
-- presence went through agent_set and the ready sets then, so they are as they should be:
-- nothing more to read or write.
if was.online == '1' and was.device == ARGV[3] then return { 'ok', was.status } end
local a = hgetall(k_agent(id))
local was_online = a.online == '1'
if not was_online or a.device ~= ARGV[3] then
  agent_set(id, a, { online = '1', device = ARGV[3] })
end
if not was_online then event('presence', { 'agent', id, 'online', '1' }) end
if refresh_ready(id, a) then wake() end
return { 'ok', a.status }
