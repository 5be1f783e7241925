-- claim: the one place routing is decided. Promotes agents whose wrap-up ended, arrivals
-- whose grace passed and callbacks whose retry is due, then takes the best waiting call (lowest rank among queue heads) that has a live ready agent, picks
-- the agent by tier then the queue's strategy (skipping agents whose heartbeat is gone, and
-- agents this call already rang unless nobody else is left), and in one step removes the call
-- from its waiting set, reserves the agent and writes the offer lease.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  offer lease, ms (time for the worker to reach Twilio; extended once it has)
-- ARGV[2]  a random non-negative integer from the caller (for the 'random' strategy)
-- Returns  {'offer', CallSid, agent, identity, queue, attempt, ring_timeout_ms, kind, from, to,
--          waited_ms, record} (attempt names this offer in every URL and result that
--          follows; waited_ms is how long the call has been in line, for the agent's screen;
--          record the queue's `<Dial record>` mode for the agent's leg)
--          or {'none', next_due_ms} where next_due_ms is the earliest time something falls
--          due (a wrap-up end, an arrival's grace, a callback retry, an offer lease, a
--          connected call's check, a heartbeat deadline; '' when nothing): when a worker
--          should look again.
-- @include calls.lua

local lease_ms = tonumber(ARGV[1])
local seed = tonumber(ARGV[2]) or 0

promote_wrapups()
promote_arrivals()
promote_retries()

-- Heads of every queue, best rank first.
local heads = {}
for _, q in ipairs(redis.call('SMEMBERS', K_QUEUES)) do
  local h = redis.call('ZRANGE', k_waiting(q), 0, 0, 'WITHSCORES')
  if h[1] then heads[#heads + 1] = { q = q, sid = h[1], rank = tonumber(h[2]) } end
end
table.sort(heads, function(x, y)
  if x.rank == y.rank then return x.q < y.q end
  return x.rank < y.rank
end)

-- The best agent for call c in queue q and the agent's hash as read, or nil.
local function pick_agent(q, cfg, c)
  local rang = c.rang or ','
  local fallback, fallback_a = nil, nil
  local scan = 20 + num(c.attempts, 0)
  for tier = 1, num(cfg.tiers, 1) do
    local key = k_ready(q, tier)
    local fresh = {}
    for _, id in ipairs(redis.call('ZRANGE', key, 0, scan - 1)) do
      local alive = redis.call('GET', k_alive(id))
      local a = hgetall(k_agent(id))
      if a == nil then
        redis.call('ZREM', key, id)
      elseif not alive then
        agent_lost(id, a)
      elseif not eligible(id, a, alive) then
        remove_ready(id, a)
      elseif string.find(rang, ',' .. id .. ',', 1, true) then
        if fallback == nil then fallback, fallback_a = id, a end
      else
        fresh[#fresh + 1] = { id, a }
        if cfg.strategy ~= 'random' then break end
      end
    end
    if #fresh > 0 then
      local pick = fresh[1]
      if cfg.strategy == 'random' then pick = fresh[(seed % #fresh) + 1] end
      return pick[1], pick[2]
    end
  end
  return fallback, fallback_a
end

for _, h in ipairs(heads) do
  local cfg = queue_cfg(h.q)
  -- what of the call an offer needs (a call that is not there has no state)
  local c = hmget(k_call(h.sid),
    { 'state', 'rang', 'attempts', 'kind', 'from', 'to', 'entered_ms' })
  if c.state ~= 'waiting' and c.state ~= 'callback' then
    -- cannot happen through these scripts; never leave a stray entry at a queue's head
    redis.call('ZREM', k_waiting(h.q), h.sid)
  elseif cfg then
    local id, a = pick_agent(h.q, cfg, c)
    if id then
      local attempts = num(c.attempts, 0) + 1
      redis.call('ZREM', k_waiting(h.q), h.sid)
      local rang = c.rang or ','
      if not string.find(rang, ',' .. id .. ',', 1, true) then rang = rang .. id .. ',' end
      redis.call('HSET', k_call(h.sid), 'state', 'offered', 'agent', id, 'attempts', attempts,
        'offered_ms', NOW, 'rang', rang, 'phase', 'claimed', 'leg_sid', '', 'checks', 0)
      redis.call('ZADD', K_OFFERS, NOW + lease_ms, h.sid)
      local active = num(a.active, 0) + 1
      local fields = { active = active }
      if cfg.strategy == 'round_robin' then
        fields['rr:' .. h.q] = redis.call('HINCRBY', k_queue(h.q), 'rr_seq', 1)
      end
      if active >= num(a.capacity, 1) then fields.status = 'reserved' end
      agent_set(id, a, fields)
      if a.status == 'reserved' then remove_ready(id, a) else refresh_ready(id, a) end
      event('offer', { 'call', h.sid, 'agent', id, 'queue', h.q, 'attempt', attempts })
      return { 'offer', h.sid, id, a.identity or id, h.q, int(attempts),
        cfg.ring_timeout_ms or '20000', c.kind or 'inbound', c.from or '', c.to or '',
        int(math.max(NOW - num(c.entered_ms, NOW), 0)), cfg.record or 'do-not-record' }
    end
  end
end

local next_due = nil
for _, key in ipairs({ K_WRAPUP, K_ARRIVING, K_RETRY, K_OFFERS, K_CONNECTED, K_HEARTBEATS }) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    local t = tonumber(first[2])
    if next_due == nil or t < next_due then next_due = t end
  end
end
if next_due == nil then return { 'none', '' } end
return { 'none', int(next_due) }
