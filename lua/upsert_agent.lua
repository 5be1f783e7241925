-- upsert_agent: create an agent or change its identity, queues and tiers, or capacity.
-- A new agent starts offline; an existing one keeps its state and is re-indexed in the ready
-- sets of its new queues.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  agent id
-- ARGV[2]  identity for <Client> (Twilio Voice SDK identity)
-- ARGV[3]  queues with tiers, "sales=1,support=2" (every queue must be configured)
-- ARGV[4]  capacity (calls held at once, >= 1)
-- ARGV[5]  mode, optional: 'create' refuses an existing agent, 'update' an unknown one
-- ARGV[6]  token generation for a new agent (agent tokens are valid while it stays the same)
-- ARGV[7]  skills with levels 1-5, "billing=3,spanish=5" ('' none); the agent is indexed in
--          its queues' skill ready sets (agents.lua) and each skill joins the centre's set
-- ARGV[8]  order in `linear` queues (lower first), default 0
-- ARGV[9]  weight in `weighted_random` queues (1-1000), default 1
-- Returns  {'created' | 'updated'} or {'unknown_queue', name} | {'exists'} | {'unknown'}
--          (the last two change nothing)
-- @include agents.lua

local id = ARGV[1]
local qs = agent_queues(ARGV[3])
for _, qt in ipairs(qs) do
  if redis.call('SISMEMBER', K_QUEUES, qt[1]) == 0 then return { 'unknown_queue', qt[1] } end
end
local a = hgetall(k_agent(id))
local created = a == nil
if ARGV[5] == 'create' and not created then return { 'exists' } end
if ARGV[5] == 'update' and created then return { 'unknown' } end
if created then
  -- nothing stored yet: every field in one write, those an offer's transitions read and write
  -- first (the presence mirror and each queue's work figures among them, empty until set)
  local flat = { 'status', 'offline', 'active', '0', 'online', '0', 'device', '0',
    'token_gen', ARGV[6] or '', 'queues', ARGV[3], 'handled', '0', 'misses', '0' }
  for _, qt in ipairs(qs) do
    flat[#flat + 1], flat[#flat + 2] = 'fc:' .. qt[1], ''
    flat[#flat + 1], flat[#flat + 2] = 'tt:' .. qt[1], ''
  end
  local rest = { 'capacity', ARGV[4], 'reason', 'new', 'winding_down', '', 'idle_ms', NOW_S,
    'pending', '', 'pending_reason', '', 'skills', ARGV[7] or '', 'identity', ARGV[2],
    'order', ARGV[8] or '0', 'weight', ARGV[9] or '1', 'id', id, 'created_ms', NOW_S }
  for _, v in ipairs(rest) do flat[#flat + 1] = v end
  a = agent_create(id, flat)
else
  remove_ready(id, a)
  agent_set(id, a, { identity = ARGV[2], queues = ARGV[3], capacity = ARGV[4],
    skills = ARGV[7] or '', order = ARGV[8] or '0', weight = ARGV[9] or '1' })
end
for _, sl in ipairs(parse_pairs(ARGV[7])) do redis.call('SADD', K_SKILLS, sl[1]) end
for _, qt in ipairs(qs) do
  local tiers = num(redis.call('HGET', k_queue(qt[1]), 'tiers'), 1)
  if qt[2] > tiers then
    redis.call('HSET', k_queue(qt[1]), 'tiers', qt[2])
    config_changed()
  end
end
redis.call('SADD', K_AGENTS, id)
if refresh_ready(id, a) then wake() end
-- the whole profile (and the token generation, which is no credential) goes on record, so
-- `callq reconcile` can restore the agent from the archive as it was
event('agent', { 'agent', id, 'status', a.status, 'reason', created and 'created' or 'updated',
  'identity', ARGV[2], 'queues', ARGV[3], 'capacity', ARGV[4], 'skills', ARGV[7] or '',
  'order', ARGV[8] or '0', 'weight', ARGV[9] or '1', 'token_gen', a.token_gen or '' })
if created then return { 'created' } end
return { 'updated' }
