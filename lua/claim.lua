-- claim: the one place routing is decided. Promotes agents whose wrap-up ended, arrivals
-- whose grace passed and callbacks whose retry is due, then takes the best waiting call (lowest
-- rank among the calls at the head of each queue's line) that a live ready agent may take,
-- and in one step removes the call from its waiting set, reserves the agent and writes the
-- offer lease.
--
-- Who may take a call: agents of its queue, up to the tiers its widening has reached, with
-- the skills it requires (its own, from an IVR choice or a priority rule, else its queue's) at
-- the minimum levels, lowered by the widening steps its wait has reached; a step can also drop
-- the skills or add another queue's agents. Among them: lower tier first, then a higher level
-- of the call's most demanding skill, then the queue's strategy (longest_idle, fewest_calls,
-- least_talk_time, round_robin, linear: the ready set's order; random, weighted_random: a
-- pick by the caller's seed among the first agents of a set kept in a random order); agents
-- this call already rang only when nobody else is left. ring_all (inbound calls): every ready
-- agent of the best tier who meets the call's skills at once, up to RING_ALL_MAX, all
-- reserved under one offer (the call's `group` and `ringing` list them; the first to answer
-- takes the call, offer_result releases the others). Skilled calls are matched from
-- per-skill, per-level ready sets (agents.lua), so a claim reads a few set heads, never
-- every agent. A queue whose
-- calls can differ in who may take them (skills, widening) is looked at `depth` calls deep,
-- so a call nobody can take yet does not hold up the calls behind it. A call an agent
-- transferred to a named agent (`pinned`, transfer_connected.lua) is offered to that agent
-- alone until `pinned_until_ms`, once.
--
-- A claim makes up to ARGV[3] offers in one step (each decided exactly as a claim of one
-- would, one after another): a worker with several free slots, after many agents freed up at
-- once, takes them in one round trip. It stops early when nothing more matches. A claim
-- pushes no wake marker (WAKE_QUIET, events.lua): what it promotes it offers itself.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  offer lease, ms (time for the worker to reach Twilio; extended once it has)
-- ARGV[2]  a random non-negative integer from the caller (for the random strategies)
-- ARGV[3]  offers to make at most (missing: 1)
-- Returns  {'batch', next, n1, offer1 (n1 items)..., n2, offer2..., ...} where each offer is
--          {'offer', CallSid, agent, identity, queue, attempt, ring_timeout_ms, kind, from, to,
--          waited_ms, record, [agent, identity]...} (attempt names this offer in every URL
--          and result that follows; waited_ms is how long the call has been in line, for the
--          agent's screen; record the queue's `<Dial record>` mode for the agent's leg; the
--          pairs after it: the other agents a ring_all offer rings with the first), and
--          `next` is 'more' when the claim stopped at ARGV[3] offers (claim again at once),
--          else it found nothing more to offer: the earliest time still to come (unix ms)
--          that something a claim acts on falls due (a wrap-up end, an arrival's grace, a
--          callback retry, a waiting call's next widening step or the end of its pin), ''
--          when nothing: when a worker should look again.
-- @include calls.lua

local lease_ms = tonumber(ARGV[1])
local seed = tonumber(ARGV[2]) or 0
local max_offers = math.max(tonumber(ARGV[3]) or 1, 1)

-- what the promotions free up, this claim offers itself: they wake no other worker
WAKE_QUIET = true
promote_wrapups()
promote_arrivals()
promote_retries()

-- Calls a claim tries to match at most (each try that finds nobody rules out every later
-- call that accepts the same agents).
local MAX_TRIES = 16

-- A queue's widening steps, in order of wait: { {after = ms, level =, tiers =, skills =,
-- queue =}, ... }, parsed from the queue's `widen` setting once per claim.
local parsed_widen = {}
local function widen_steps(spec)
  if spec == nil or spec == '' then return {} end
  local out = parsed_widen[spec]
  if out then return out end
  out = {}
  for item in string.gmatch(spec, '[^;]+') do
    local after, rest = string.match(item, '^(%d+):(.*)$')
    if after then
      local step = { after = tonumber(after) }
      for name, value in string.gmatch(rest, '([^,=]+)=([^,]+)') do step[name] = value end
      out[#out + 1] = step
    end
  end
  table.sort(out, function(x, y) return x.after < y.after end)
  parsed_widen[spec] = out
  return out
end

-- Who may take call c of queue q now: { need = {{skill, min level}, ...} most demanding
-- first, tiers = the highest tier of q, queues = {q, more...}, due = when the next widening
-- step falls due (nil: none left), sig = a string equal for calls that accept the same agents }.
local function reach(q, cfg, c)
  local entered = num(c.entered_ms, NOW)
  local spec = c.skills
  if spec == nil or spec == '' then spec = cfg.skills end
  local steps = widen_steps(cfg.widen)
  local tiers = setting(cfg, 'tiers', 1)
  for _, step in ipairs(steps) do
    if step.tiers then tiers = 1 break end
  end
  local cap, any, queues, due = nil, false, { q }, nil
  for _, step in ipairs(steps) do
    if NOW - entered < step.after then
      due = entered + step.after
      break
    end
    if step.level then cap = math.min(cap or 5, num(step.level, 5)) end
    if step.tiers then tiers = math.max(tiers, num(step.tiers, 1)) end
    if step.skills == 'any' then any = true end
    if step.queue and step.queue ~= q then queues[#queues + 1] = step.queue end
  end
  local need = {}
  if not any then
    for _, sl in ipairs(parse_pairs(spec)) do
      need[#need + 1] = { sl[1], cap and math.min(sl[2], cap) or sl[2] }
    end
    table.sort(need, function(x, y)
      if x[2] == y[2] then return x[1] < y[1] end
      return x[2] > y[2]
    end)
  end
  local sig = { int(tiers), table.concat(queues, ',') }
  for _, sl in ipairs(need) do sig[#sig + 1] = sl[1] .. '=' .. sl[2] end
  return { need = need, tiers = tiers, queues = queues, due = due,
    sig = table.concat(sig, '|') }
end

-- Whether agent a has every skill of `need` after the first (the ready set it was read from
-- already vouches for the first) at its minimum level.
local function meets(a, need)
  if #need <= 1 then return true end
  local have = {}
  for _, sl in ipairs(parse_pairs(a.skills)) do have[sl[1]] = sl[2] end
  for i = 2, #need do
    if num(have[need[i][1]], 0) < need[i][2] then return false end
  end
  return true
end

-- Strategies that pick among every fresh agent seen rather than the first.
local RANDOM = { random = true, weighted_random = true }

-- Agent `id` of ready set `key`: its hash when it is live and ready, else nil, with the stale
-- entry cleaned up on the way (an agent gone from the set, a lost heartbeat marked, one no
-- longer ready taken out of its ready sets).
local function ready_entry(key, id)
  local alive = redis.call('GET', k_alive(id))
  local a = hgetall(k_agent(id))
  if a == nil then
    redis.call('ZREM', key, id)
  elseif not alive then
    agent_lost(id, a)
  elseif not eligible(id, a, alive) then
    remove_ready(id, a)
  else
    return a
  end
  return nil
end

-- Looks at the first st.scan agents of ready set `key` (best first): returns the first one
-- that is live, ready and meets st.need and that this call has not rung yet (with the
-- random strategies, one of those at random, by the caller's seed, in proportion to the
-- agents' weights for weighted_random) and its hash; remembers the first one it has
-- rung as the last resort. Stale entries found on the way are cleaned up.
local function scan_set(key, st, strategy, seed)
  local fresh = {}
  local random = RANDOM[strategy]
  -- A set in the strategy's order is read two entries deep first: its head is nearly always
  -- the agent offered, and each entry read costs Redis a Lua string. Only when those two do
  -- not do is it read again, st.scan deep (from the top: a stale entry cleaned up on the
  -- way moves the others up; st.seen skips the ones already looked at).
  local depth = st.scan
  if not random then depth = math.min(2, depth) end
  while true do
    local ids = redis.call('ZRANGE', key, '0', int(depth - 1))
    for _, id in ipairs(ids) do
      if not st.seen[id] then
        st.seen[id] = true
        local a = ready_entry(key, id)
        if a == nil then
          -- gone, lost or not ready: cleaned up
        elseif not meets(a, st.need) then
          -- a ready agent without another skill this call needs
        elseif string.find(st.rang, ',' .. id .. ',', 1, true) then
          if st.fallback == nil then st.fallback, st.fallback_a = id, a end
        else
          fresh[#fresh + 1] = { id, a }
          if not random then break end
        end
      end
    end
    if #fresh > 0 or depth >= st.scan or #ids < depth then break end
    depth = st.scan
  end
  if #fresh == 0 then return nil end
  local pick = fresh[1]
  if strategy == 'random' then
    pick = fresh[(seed % #fresh) + 1]
  elseif strategy == 'weighted_random' then
    local total = 0
    for _, f in ipairs(fresh) do total = total + math.max(num(f[2].weight, 1), 1) end
    local r = (seed % 1000003) / 1000003 * total
    for _, f in ipairs(fresh) do
      r = r - math.max(num(f[2].weight, 1), 1)
      pick = f
      if r < 0 then break end
    end
  end
  return pick[1], pick[2]
end

-- The best agent for call c of queue q (settings cfg) within reach r, and the agent's hash
-- as read, or nil.
local function pick_agent(q, cfg, c, r)
  local st = { scan = 20 + num(c.attempts, 0), rang = c.rang or ',', need = r.need, seen = {} }
  for i, qx in ipairs(r.queues) do
    local cx = cfg
    if i > 1 then cx = queue_cfg(qx) end
    if cx then
      local tiers = setting(cx, 'tiers', 1)
      if i == 1 then tiers = math.min(tiers, r.tiers) end
      for tier = 1, tiers do
        if #r.need == 0 then
          local id, a = scan_set(k_ready(qx, tier), st, cx.strategy, seed)
          if id then return id, a end
        else
          local skill, least = r.need[1][1], r.need[1][2]
          for level = 5, least, -1 do
            local id, a = scan_set(k_ready_skill(qx, tier, skill, level), st, cx.strategy, seed)
            if id then return id, a end
          end
        end
      end
    end
  end
  return st.fallback, st.fallback_a
end

-- Agents one ring_all offer rings at most.
local RING_ALL_MAX = 10

-- The agents a ring_all offer of call c of queue q (settings cfg) rings, within reach r:
-- every live, ready agent of the best (queue, tier) that has one and that meets the call's
-- skills, best first (by level of the most demanding skill, then the ready sets' order), at
-- most RING_ALL_MAX; agents this call already rang are rung again with the others. Returns
-- { {id, hash}, ... } (empty: nobody). Stale entries found on the way are cleaned up.
local function ring_group(q, cfg, c, r)
  local scan = RING_ALL_MAX * 2 + 10
  for i, qx in ipairs(r.queues) do
    local cx = cfg
    if i > 1 then cx = queue_cfg(qx) end
    if cx then
      local tiers = setting(cx, 'tiers', 1)
      if i == 1 then tiers = math.min(tiers, r.tiers) end
      for tier = 1, tiers do
        local keys = {}
        if #r.need == 0 then
          keys[1] = k_ready(qx, tier)
        else
          for level = 5, r.need[1][2], -1 do
            keys[#keys + 1] = k_ready_skill(qx, tier, r.need[1][1], level)
          end
        end
        local group, seen = {}, {}
        for _, key in ipairs(keys) do
          for _, id in ipairs(redis.call('ZRANGE', key, '0', int(scan - 1))) do
            if #group >= RING_ALL_MAX then break end
            if not seen[id] then
              seen[id] = true
              local a = ready_entry(key, id)
              if a and meets(a, r.need) then group[#group + 1] = { id, a } end
            end
          end
        end
        if #group > 0 then return group end
      end
    end
  end
  return {}
end

-- The agent a call was transferred to, and its hash, when it is live and ready now.
local function pinned_agent(id)
  local alive = redis.call('GET', k_alive(id))
  local a = hgetall(k_agent(id))
  if a and alive and eligible(id, a, alive) then return id, a end
  return nil
end

-- The agents call c (head h of queue h.q, settings cfg) would ring now: its pinned agent
-- `pin` alone, or (ring_all, an inbound call) every ready agent of the best tier within reach
-- r, or the best one; { {id, hash}, ... }, empty when nobody.
local function ring_whom(h, cfg, c, pin, r)
  if pin then
    local id, a = pinned_agent(pin)
    if id then return { { id, a } } end
    return {}
  end
  if cfg.strategy == 'ring_all' and c.kind ~= 'callback' then
    return ring_group(h.q, cfg, c, r)
  end
  local id, a = pick_agent(h.q, cfg, c, r)
  if id then return { { id, a } } end
  return {}
end

-- Offer call c (head h, settings cfg) to `group`: out of its line, the offer and its lease
-- written, every agent of the group reserved (or, below capacity, still ready), the event
-- told. Returns the offer (the list described at the top).
local function make_offer(h, cfg, c, group)
  local id, a = group[1][1], group[1][2]
  local attempts = num(c.attempts, 0) + 1
  redis.call('ZREM', k_waiting(h.q), h.sid)
  local rang = c.rang or ','
  local members = ''
  for _, g in ipairs(group) do
    if not string.find(rang, ',' .. g[1] .. ',', 1, true) then rang = rang .. g[1] .. ',' end
    members = members .. ',' .. g[1]
  end
  if #group > 1 then members = members .. ',' else members = '' end
  -- a pin is good for one offer: unanswered, the call goes to anyone who may take it
  redis.call('HSET', k_call(h.sid), 'state', 'offered', 'agent', id, 'attempts',
    int(attempts), 'offered_ms', NOW_S, 'rang', rang, 'phase', 'claimed', 'leg_sid', '',
    'checks', '0', 'pinned', '', 'group', members, 'ringing', members)
  redis.call('ZADD', K_OFFERS, int(NOW + lease_ms), h.sid)
  local out = { 'offer', h.sid, id, a.identity or id, h.q, int(attempts),
    cfg.ring_timeout_ms or '20000', c.kind or 'inbound', c.from or '', c.to or '',
    int(math.max(NOW - num(c.entered_ms, NOW), 0)), cfg.record or 'do-not-record' }
  for i, g in ipairs(group) do
    local gid, ga = g[1], g[2]
    local active = num(ga.active, 0) + 1
    local fields = { active = active }
    if cfg.strategy == 'round_robin' then
      fields['rr:' .. h.q] = redis.call('HINCRBY', k_queue_stats(h.q), 'rr_seq', '1')
    end
    if active >= num(ga.capacity, 1) then fields.status = 'reserved' end
    agent_set(gid, ga, fields)
    if ga.status == 'reserved' then remove_ready(gid, ga) else refresh_ready(gid, ga) end
    if i > 1 then
      out[#out + 1] = gid
      out[#out + 1] = ga.identity or gid
    end
  end
  -- one offer, named by its first agent; a ring_all offer lists every agent it rings
  local fields = { 'call', h.sid, 'agent', id, 'queue', h.q, 'attempt', attempts }
  if members ~= '' then
    fields[#fields + 1] = 'agents'
    fields[#fields + 1] = string.sub(members, 2, -2)
  end
  event('offer', fields)
  return out
end

-- The calls at the head of every queue's line, best rank first.
local function queue_heads()
  local heads = {}
  for _, q in ipairs(redis.call('SMEMBERS', K_QUEUES)) do
    local cfg = queue_cfg(q)
    local depth = 1
    if cfg then depth = math.max(setting(cfg, 'depth', 1), 1) end
    local h = redis.call('ZRANGE', k_waiting(q), '0', int(depth - 1), 'WITHSCORES')
    for i = 1, #h, 2 do
      heads[#heads + 1] = { q = q, sid = h[i], rank = tonumber(h[i + 1]) }
    end
  end
  table.sort(heads, function(x, y)
    if x.rank == y.rank then
      if x.q == y.q then return x.sid < y.sid end
      return x.q < y.q
    end
    return x.rank < y.rank
  end)
  return heads
end

-- Calls whose reach found nobody (by `sig`): nobody is found for them later in the same
-- claim either, as its offers only take agents away.
local found_nobody = {}
-- The earliest widening step or pin end still to come among the calls the last pass looked
-- at (the pass that found nothing, when a claim ends idle).
local widen_due = nil

-- One offer: the best waiting call a live ready agent may take, reserved; returns the offer
-- or nil when nothing matches.
local function claim_one()
  widen_due = nil
  local tries = 0
  for _, h in ipairs(queue_heads()) do
    local cfg = queue_cfg(h.q)
    -- what of the call an offer needs (a call that is not there has no state)
    local v = redis.call('HMGET', k_call(h.sid), 'state', 'rang', 'attempts', 'kind', 'from',
      'to', 'entered_ms', 'skills', 'pinned')
    local c = { state = v[1] or nil, rang = v[2] or nil, attempts = v[3] or nil,
      kind = v[4] or nil, from = v[5] or nil, to = v[6] or nil, entered_ms = v[7] or nil,
      skills = v[8] or nil, pinned = v[9] or nil }
    if c.pinned and c.pinned ~= '' then
      -- (read only for a pinned call: a field a hash lacks costs a scan of the whole hash)
      c.pinned_until_ms = redis.call('HGET', k_call(h.sid), 'pinned_until_ms') or nil
    end
    if c.state ~= 'waiting' and c.state ~= 'callback' then
      -- cannot happen through these scripts; never leave a stray entry in a line
      redis.call('ZREM', k_waiting(h.q), h.sid)
    elseif cfg then
      -- a call transferred to a named agent waits for that agent alone, for a while
      local pin = c.pinned
      if pin == nil or pin == '' or num(c.pinned_until_ms, 0) <= NOW then pin = nil end
      local r, sig
      if pin then
        local until_ms = num(c.pinned_until_ms, 0)
        if widen_due == nil or until_ms < widen_due then widen_due = until_ms end
        sig = 'pin|' .. pin
      else
        r = reach(h.q, cfg, c)
        if r.due and (widen_due == nil or r.due < widen_due) then widen_due = r.due end
        sig = h.q .. '|' .. r.sig
      end
      if not found_nobody[sig] and tries < MAX_TRIES then
        tries = tries + 1
        local group = ring_whom(h, cfg, c, pin, r)
        if #group > 0 then return make_offer(h, cfg, c, group) end
        found_nobody[sig] = true
      end
    end
  end
  return nil
end

-- Offers, one after another, up to max_offers; each next one picks by another random number
-- (the caller's, stepped as the Park-Miller generator does).
local out, more = { 'batch', 'more' }, true
for _ = 1, max_offers do
  local offer = claim_one()
  if offer == nil then
    more = false
    break
  end
  out[#out + 1] = tostring(#offer)
  for _, v in ipairs(offer) do out[#out + 1] = v end
  seed = (seed % 2147483647 + 1) * 48271 % 2147483647
end
if more then return out end

-- When to look again: the next of what a claim acts on, still to come. Offer leases and
-- connected-call checks are left out: the worker's check rounds take those on a timer of
-- their own, and one overdue until its round would otherwise keep the worker from timing the
-- wrap-ups that end meanwhile. Heartbeat deadlines too: a lapsed heartbeat makes no work (a
-- claim checks each agent's heartbeat key before offering), and the reaper's timer counts
-- the agent offline.
local next_due = widen_due
for _, key in ipairs({ K_WRAPUP, K_ARRIVING, K_RETRY }) do
  local first = redis.call('ZRANGEBYSCORE', key, '(' .. int(NOW), '+inf', 'WITHSCORES',
    'LIMIT', '0', '1')
  if first[2] then
    local t = tonumber(first[2])
    if next_due == nil or t < next_due then next_due = t end
  end
end
out[2] = ''
if next_due ~= nil then out[2] = int(next_due) end
return out
