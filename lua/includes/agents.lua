-- agents.lua: the agent state machine. An agent's `status` is what routing and the agent (or
-- a supervisor) made of it: offline, available, paused (chosen), reserved, busy, wrapup (on
-- or after a call). Presence is apart from it: the heartbeat key `agent:<A>:alive` lives or
-- not, mirrored in the field `online` ('1'/'0') for readers. Losing the heartbeat makes an
-- agent unofferable; it never changes the status the agent chose.
--
-- Every write to an agent hash goes through agent_set (agent_create makes a new one), which
-- keeps each queue's counters (`queue:<q>:agents`, agents by state) in step, so a queue's
-- numbers cost O(1) to read.
-- @include events.lua

-- "sales=1,support=2" -> { {'sales', 1}, {'support', 2} }: an agent's queues with tiers, and
-- in the same form skills with levels ("billing=3,spanish=5"). Parsed once per spec and call
-- (an agent's spec is read by every counter move and ready-set change); callers only read
-- the result.
local parsed_pairs, parsed_run = {}, nil
local function parse_pairs(spec)
  if spec == nil or spec == '' then return {} end
  if parsed_run ~= RUN then parsed_pairs, parsed_run = {}, RUN end
  local out = parsed_pairs[spec]
  if out then return out end
  out = {}
  for item in string.gmatch(spec, '[^,]+') do
    local name, n = string.match(item, '^([^=]+)=(%d+)$')
    if name then out[#out + 1] = { name, tonumber(n) } end
  end
  parsed_pairs[spec] = out
  return out
end
local function agent_queues(spec) return parse_pairs(spec) end

-- The queue's routing settings, or nil when the queue is not configured. Loaded as a library
-- of functions, the Lua state outlives a call, so the settings are kept from one call to the
-- next, per centre, as long as the centre's `config_gen` stays the same: one GET per call
-- instead of reading each queue's whole hash (every script that writes a setting calls
-- config_changed: configure_queue, and upsert_agent when it raises `tiers`). Loaded as
-- plain scripts (EVALSHA), the cache lasts one call. Callers only read the table.
local cfg_cache = {} -- [prefix] = { gen = config_gen as read, cfgs = { [queue] = table or false } }
local queue_cfgs = {}
local function queue_cfg(q)
  if CFG_RUN ~= RUN then
    CFG_RUN = RUN
    local gen = redis.call('GET', K_CONFIG_GEN) or ''
    local cached = cfg_cache[P]
    if cached == nil or cached.gen ~= gen then
      cached = { gen = gen, cfgs = {} }
      cfg_cache[P] = cached
    end
    queue_cfgs = cached.cfgs
  end
  local c = queue_cfgs[q]
  if c == nil then
    c = hgetall(k_queue(q))
    if c == nil or c.strategy == nil then c = false end
    queue_cfgs[q] = c
  end
  return c or nil
end

-- A queue setting as a number, or `default` when unset or not a number. Turned into a number
-- once per copy of the settings (a string's conversion is a strtod each time), so as long
-- as queue_cfg keeps the copy, across calls when loaded as functions. The numbers are kept
-- in the settings table itself under the key NUMBERS, a table, which no field name can be.
local NUMBERS = {}
local function setting(cfg, name, default)
  local nums = cfg[NUMBERS]
  if nums == nil then
    nums = {}
    cfg[NUMBERS] = nums
  end
  local n = nums[name]
  if n == nil then
    n = tonumber(cfg[name]) or false
    nums[name] = n
  end
  if n == false then return default end
  return n
end

-- Work an agent did lately in a queue (calls answered `fc:<q>`, seconds talked `tt:<q>`),
-- fading with the queue's half-life: an amount x done at time t counts x * 2^-((now - t) / h)
-- now. Stored as the score log2(faded total) + t / h (forward decay), whose order between
-- agents never changes as time passes, so ready sets need no re-scoring and no timer runs.
-- An agent who did nothing there scores 0, below everyone: a newcomer is preferred until
-- their recent work matches the others', never for the others' whole lifetime.
local DEFAULT_HALF_LIFE_MS = 3600000
local function faded_plus(score, amount, cfg)
  local t = NOW / math.max(setting(cfg, 'half_life_ms', DEFAULT_HALF_LIFE_MS), 1000)
  local total = amount
  local s = tonumber(score)
  if s ~= nil and s > 0 then total = total + 2 ^ (s - t) end
  return math.log(total) / math.log(2) + t
end

-- A number in (0, 1) drawn afresh each time an agent's ready entry is written: a hash of
-- the agent, the centre, the clock and the call (scripts have no free randomness).
local function draw(id)
  local h = redis.sha1hex(id .. ':' .. P .. ':' .. NOW .. ':' .. RUN)
  return (tonumber(string.sub(h, 1, 12), 16) + 1) / (16 ^ 12 + 2)
end

-- The score an agent gets in q's ready sets, by q's strategy (lowest is offered first). The
-- random strategies get a fresh random place whenever the agent becomes (or stays) ready,
-- so the few agents a claim looks at are a random sample of the ready ones, and the claim
-- picks among those by the caller's seed (weighted by `weight` for weighted_random).
local function ready_score(q, cfg, a, id)
  local s = cfg.strategy
  if s == 'random' or s == 'weighted_random' then return draw(id) end
  local v
  if s == 'fewest_calls' then
    v = a['fc:' .. q]
  elseif s == 'least_talk_time' then
    v = a['tt:' .. q]
  elseif s == 'round_robin' then
    v = a['rr:' .. q]
  elseif s == 'linear' then
    v = a.order
  else
    v = a.idle_ms -- longest_idle
  end
  -- the field as stored (a string, no number formatting), or 0 when unset
  if tonumber(v) == nil then return '0' end
  return v
end

-- An agent's ready sets: per queue and tier, the plain set every call without required
-- skills is matched from, and for each skill the agent has, the set of its level
-- (`ready:<t>:skill:<s>:<level>`), which calls requiring that skill are matched from. Both
-- carry the same strategy score, so a claim reads a few heads, never every agent.
local function remove_ready(id, a)
  local skills = parse_pairs(a.skills)
  for _, qt in ipairs(agent_queues(a.queues)) do
    redis.call('ZREM', k_ready(qt[1], qt[2]), id)
    for _, sl in ipairs(skills) do
      redis.call('ZREM', k_ready_skill(qt[1], qt[2], sl[1], sl[2]), id)
    end
  end
end

-- Ready means: status available, below capacity, a live heartbeat with a registered device.
-- `alive` is the heartbeat key's value when the caller has just read it (claim reads it for
-- every agent it offers to). Without it, presence is taken from the agent hash's mirror of
-- it (`online`, `device`), which lags the key only between a heartbeat's TTL running out and
-- the next reap (a second at most, or the claim that meets the agent): an agent added to its
-- ready sets in that gap is taken out by either, and never offered a call meanwhile.
local function eligible(id, a, alive)
  if a.status ~= 'available' or num(a.active, 0) >= num(a.capacity, 1) then return false end
  if alive == nil then return a.online == '1' and a.device == '1' end
  return alive == '1'
end

-- Put the agent in (or take it out of) its ready sets to match its state. Returns true when
-- the agent was not ready before and is now (the caller then wakes a worker). `listed` false:
-- the caller knows the agent is in none of its ready sets, since its status was not
-- available (every move away from available takes an agent out of them, and a claim drops
-- any entry it meets of an agent not ready), so an agent still not ready needs no removal.
local function refresh_ready(id, a, listed)
  if not eligible(id, a) then
    if listed ~= false then remove_ready(id, a) end
    return false
  end
  local added = false
  local skills = parse_pairs(a.skills)
  for _, qt in ipairs(agent_queues(a.queues)) do
    local cfg = queue_cfg(qt[1])
    if cfg then
      local score = ready_score(qt[1], cfg, a, id)
      local n = redis.call('ZADD', k_ready(qt[1], qt[2]), score, id)
      if n == 1 then added = true end
      for _, sl in ipairs(skills) do
        redis.call('ZADD', k_ready_skill(qt[1], qt[2], sl[1], sl[2]), score, id)
      end
    end
  end
  return added
end

-- The state an agent is counted in by its queues' counters: its status, except that an
-- agent who chose available without a live, registered device counts as offline (nobody
-- can take a call there, and the wait estimate must not count on them).
local function agent_bucket(a)
  local s = a.status
  if s == 'available' and (a.online ~= '1' or a.device ~= '1') then return 'offline' end
  return s
end

-- Add `step` ('1' or '-1') to the counter of `bucket` in each queue of the queue spec
-- `queues`.
local function count_agent(queues, bucket, step)
  if bucket == nil then return end
  for _, qt in ipairs(agent_queues(queues)) do
    redis.call('HINCRBY', k_queue_agents(qt[1]), bucket, step)
  end
end

-- Set fields on the agent hash and mirror them in the Lua table `a`; moves the agent between
-- its queues' counters when its counted state or its queues change. `a` mirrors the hash
-- for every field it holds (only agent_set, and agent_create for a new agent, write an
-- agent's routing fields), so a field already at its value is not written again: each
-- field a write names costs Redis a scan of the hash. (`set_flat` is agent_set's scratch
-- list of name, value pairs, kept between calls so its array is not grown afresh by every
-- write; only agent_set uses it, and never re-entered.)
local set_flat = {}
local function agent_set(id, a, fields)
  local bucket, queues = agent_bucket(a), a.queues
  local flat, n = set_flat, 0
  for k, v in pairs(fields) do
    local s = str(v)
    if a[k] ~= s then
      a[k] = s
      flat[n + 1], flat[n + 2] = k, s
      n = n + 2
    end
  end
  if n == 0 then return end
  redis.call('HSET', k_agent(id), unpack(flat, 1, n))
  local now_bucket = agent_bucket(a)
  if now_bucket ~= bucket or a.queues ~= queues then
    count_agent(queues, bucket, '-1')
    count_agent(a.queues, now_bucket, '1')
  end
end

-- A new agent's hash, written by one HSET in the order of `flat` (name, value pairs, every
-- value a string), and its mirror table, counted in its queues as agent_set would count it.
-- Each field a command names costs Redis a scan of the hash from its first field, so the
-- caller puts first the fields transitions read and write most.
local function agent_create(id, flat)
  local a = {}
  for i = 1, #flat, 2 do a[flat[i]] = flat[i + 1] end
  redis.call('HSET', k_agent(id), unpack(flat))
  count_agent(a.queues, agent_bucket(a), '1')
  return a
end

-- Move the agent to `status` (not on a call) and fix its ready sets, wrap-up entry and wake.
-- hold_ms > 0 with status 'wrapup' puts it in the wrap-up set until NOW + hold_ms. `extra`
-- (optional) holds more fields to write in the same HSET (agent_release's), none of them
-- `status`, `reason` or `winding_down`.
local function agent_settle(id, a, status, hold_ms, reason, extra)
  local fields = extra or {}
  fields.status, fields.reason, fields.winding_down = status, reason or '', ''
  if status == 'wrapup' then
    local ends = int(NOW + hold_ms)
    redis.call('ZADD', K_WRAPUP, ends, id)
    -- a worker learns when this wrap-up ends and claims then (no claim now: nothing changed
    -- that it could offer)
    wake(ends)
  elseif a.status == 'wrapup' then
    -- only an agent in wrap-up is in the wrap-up set (it enters both here, together)
    redis.call('ZREM', K_WRAPUP, id)
  end
  local active = fields.active
  if active == nil then active = a.active end
  if status == 'available' and a.status ~= 'available' and num(active, 0) == 0 then
    fields.idle_ms = NOW
  end
  local listed = a.status == 'available'
  agent_set(id, a, fields)
  if refresh_ready(id, a, listed) then wake() end
  event('agent', { 'agent', id, 'status', status, 'reason', reason or '' })
end

-- An agent let go of one call (ended, not answered, or abandoned). `hold_ms` is the wrap-up
-- or no-answer delay to serve before the next offer. A deferred status request (paused or
-- offline asked for while on a call) is applied once the agent holds no call. `extra`
-- (optional) holds more fields to write in the same HSET, none of them `status`, `active`,
-- `queues` or `pending`.
local function agent_release(id, a, hold_ms, extra)
  local active = math.max(num(a.active, 0) - 1, 0)
  local fields = extra or {}
  fields.active = active
  if a.status == 'paused' or a.status == 'offline' then
    agent_set(id, a, fields)
    remove_ready(id, a)
    return
  end
  if a.pending ~= nil and a.pending ~= '' then
    if active > 0 then
      agent_set(id, a, fields)
      remove_ready(id, a)
      return
    end
    local pending, reason = a.pending, a.pending_reason
    fields.pending, fields.pending_reason = '', ''
    agent_settle(id, a, pending, 0, reason, fields)
    return
  end
  if active == 0 and hold_ms > 0 then
    agent_settle(id, a, 'wrapup', hold_ms, '', fields)
  elseif active == 0 then
    agent_settle(id, a, 'available', 0, '', fields)
  else
    -- still holding other calls, now below capacity: offerable again
    fields.status = 'available'
    agent_set(id, a, fields)
    if refresh_ready(id, a) then wake() end
  end
end

-- The heartbeat is gone: the agent cannot be offered a call until its next heartbeat. What
-- the agent chose (available, paused, a deferred change) stays as it is. Returns true when
-- the agent was online until now.
local function agent_lost(id, a)
  remove_ready(id, a)
  if a.online == '0' then return false end
  agent_set(id, a, { online = '0' })
  event('presence', { 'agent', id, 'online', '0' })
  return true
end

-- Wrap-up and no-answer delays whose time has come: the agents are available again.
local function promote_wrapups()
  local due = redis.call('ZRANGEBYSCORE', K_WRAPUP, '-inf', NOW_S, 'LIMIT', '0', '100')
  for _, id in ipairs(due) do
    local a = hgetall(k_agent(id))
    if a and a.status == 'wrapup' then
      agent_settle(id, a, 'available', 0, '') -- takes it out of the wrap-up set
    else
      redis.call('ZREM', K_WRAPUP, id)
    end
  end
  return #due
end
