-- recount_agents: recompute every queue's agent counters (`queue:<q>:agents`, agents by the
-- state they are counted in) from the agent hashes. The scripts keep the counters in step on
-- every change; this is the check of that, and the repair after an upgrade or a hand edit.
-- It reads every agent (O(agents)): a server runs it once at start, never per request.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  'fix' rewrites counters that are off (and fills in the `device` flag of agents
--          stored before it was kept, from their heartbeat key); 'check' only reports
-- Returns  a flat list {queue, state, stored, counted, ...} of every counter that was off
--          (empty when all agree)
-- @include agents.lua

local fix = ARGV[1] == 'fix'
local want = {}
for _, q in ipairs(redis.call('SMEMBERS', K_QUEUES)) do want[q] = {} end
for _, id in ipairs(redis.call('SMEMBERS', K_AGENTS)) do
  local a = hgetall(k_agent(id))
  if a ~= nil then
    if fix and a.device == nil then
      local alive = redis.call('GET', k_alive(id))
      if alive then
        a.device = alive
        redis.call('HSET', k_agent(id), 'device', alive)
      end
    end
    local bucket = agent_bucket(a)
    if bucket ~= nil then
      for _, qt in ipairs(agent_queues(a.queues)) do
        local counts = want[qt[1]]
        if counts == nil then
          counts = {}
          want[qt[1]] = counts
        end
        counts[bucket] = (counts[bucket] or 0) + 1
      end
    end
  end
end

local off = {}
for q, counts in pairs(want) do
  local stored = hgetall(k_queue_agents(q)) or {}
  local states = {}
  for s, _ in pairs(counts) do states[s] = true end
  for s, _ in pairs(stored) do states[s] = true end
  for s, _ in pairs(states) do
    local have, need = num(stored[s], 0), counts[s] or 0
    if have ~= need then
      off[#off + 1] = q
      off[#off + 1] = s
      off[#off + 1] = int(have)
      off[#off + 1] = int(need)
      if fix then redis.call('HSET', k_queue_agents(q), s, need) end
    end
  end
end
return off
