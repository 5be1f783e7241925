-- offer_result: what became of an offer. 'answered' connects the call, makes the agent busy
-- and schedules the first check that the conversation still goes on. 'no-answer', 'busy'
-- and 'failed' put the call back in line at its original rank and give the agent the
-- queue's delay for that outcome (no-answer, busy or failed delay); after the queue's max
-- no-answer in a row the agent is paused (its device is probably gone). 'canceled' puts the
-- call back without counting a miss (Twilio could not ring, or the ring was cut by something
-- not the agent's doing). 'refused' means Twilio refused this call's redirect for good (a
-- permanent error): the agent is released without a miss and the call goes back in line;
-- after MAX_REFUSALS refusals the call overflows instead, so the caller's next wait request
-- carries out the queue's overflow action rather than holding for an agent Twilio will never
-- let them reach. A result for any offer but the current one, named by (agent, attempt),
-- changes nothing. With the `fallback` switch off, an unanswered inbound call overflows
-- instead of going back in line.
--
-- A ring_all offer rings several agents at once (the call's `group`; those still reserved
-- for it in `ringing`). The first 'answered' of an agent still ringing connects the call to
-- that agent and releases every other at once, with no miss; a later 'answered' of another
-- finds the call connected and changes nothing, so the call never has two agents. One
-- agent's own leg ending unanswered (scope 'leg') releases that agent alone, as above, while
-- others still ring; the last one's ends the offer. A result for the whole offer (the
-- `<Dial>` ended, the worker, a check) puts the call back and releases every agent still
-- ringing, each as a lone agent's offer with that outcome would.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  agent id the offer went to (any agent of a ring_all offer names it)
-- ARGV[3]  attempt (the offer's number)
-- ARGV[4]  outcome: answered | no-answer | busy | failed | canceled | refused
-- ARGV[5]  the Twilio CallSid of the agent's leg when known, or ''; for 'refused', the reason
-- ARGV[6]  scope of an unanswered outcome: 'leg' (that agent's own leg ended) | '' (the
--          whole offer); the same for a one-agent offer
-- Returns  {'connected', queue, kind, waited_ms} | {'requeued', agent_status, queue, outcome}
--          | {'missed', agent_status, queue, outcome} (fallback off: overflowed)
--          | {'refused', queue} (overflowed) | {'released', agent_status, queue, outcome}
--          (one agent of a ring_all offer stopped ringing; the others still ring)
--          | {'stale', state}
-- @include calls.lua

local MAX_REFUSALS = 3

local sid, id, attempt, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local scope = ARGV[6] or ''
local c = call_offer_view(sid)
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'offered' or not is_current_offer(c, id, attempt) then
  return { 'stale', c.state }
end
local cfg = queue_cfg(c.queue) or {}
local group = c.group ~= nil and c.group ~= ''
-- an agent of a ring_all offer whose ring already ended (released) has no say in it
if group and (outcome == 'answered' or scope == 'leg') and not in_list(c.ringing, id) then
  return { 'stale', c.state }
end

-- Release agent `aid` (hash `a`) from an offer that ended `outcome` (not answered): a miss
-- and the queue's rest for it, or paused after too many misses; none for 'canceled'.
local function release_unanswered(aid, a, why)
  if why == 'canceled' then
    agent_release(aid, a, 0)
    return
  end
  local misses = num(a.misses, 0) + 1
  agent_set(aid, a, { misses = misses })
  if misses >= setting(cfg, 'max_no_answer', 3) and num(a.active, 0) <= 1 then
    agent_set(aid, a, { active = 0, pending = '', pending_reason = '' })
    agent_settle(aid, a, 'paused', 0, 'no_answer')
    return
  end
  -- the rest before the next offer, by what became of this one
  local rest = setting(cfg, 'no_answer_delay_ms', 0)
  if why == 'busy' then
    rest = setting(cfg, 'busy_delay_ms', rest)
  elseif why == 'failed' then
    rest = setting(cfg, 'failed_delay_ms', rest)
  end
  agent_release(aid, a, rest)
end

-- The status of agent `aid` now (after what this script did), for the reply.
local function status_of(aid)
  return redis.call('HGET', k_agent(aid), 'status') or 'unknown'
end

if outcome == 'answered' then
  -- what of the agent this changes, and what its queues' counters are kept by (agent_set)
  local fc = 'fc:' .. c.queue
  local v = redis.call('HMGET', k_agent(id), 'status', 'handled', 'queues', 'online', 'device',
    fc)
  local a = nil
  if v[1] then
    a = { status = v[1], handled = v[2] or nil, queues = v[3] or nil, online = v[4] or nil,
      device = v[5] or nil, [fc] = v[6] or nil }
  end
  redis.call('ZREM', K_OFFERS, sid)
  redis.call('ZADD', K_CONNECTED, int(NOW + setting(cfg, 'check_after_ms', 300000)), sid)
  local call_fields = { 'state', 'connected', 'answered_ms', NOW_S, 'phase', '', 'checks', '0',
    'agent', id, 'ringing', '' }
  if ARGV[5] ~= nil and ARGV[5] ~= '' then
    call_fields[13], call_fields[14] = 'leg_sid', ARGV[5]
  end
  redis.call('HSET', k_call(sid), unpack(call_fields))
  if a then
    local fields = { misses = 0, handled = num(a.handled, 0) + 1 }
    fields[fc] = faded_plus(a[fc], 1, cfg)
    if a.status == 'reserved' then fields.status = 'busy' end
    agent_set(id, a, fields)
  end
  -- ring_all: the others rang for nothing; free at once, no miss
  local released = {}
  for _, other in ipairs(call_agents(c)) do
    if other ~= id then
      local oa = hgetall(k_agent(other))
      if oa then agent_release(other, oa, 0) end
      released[#released + 1] = other
    end
  end
  local waited = NOW - num(c.entered_ms, NOW)
  if c.kind ~= 'callback' then
    -- the estimated wait's inputs: how long callers held, and the ring they wait through
    queue_left(c.queue, waited, false, NOW - num(c.offered_ms, NOW))
  end
  local fields = { 'call', sid, 'agent', id, 'queue', c.queue, 'attempt', attempt,
    'waited_ms', waited }
  if #released > 0 then
    fields[#fields + 1] = 'released'
    fields[#fields + 1] = table.concat(released, ',')
  end
  event('connected', fields)
  return { 'connected', c.queue, c.kind or 'inbound', int(waited) }
end

if outcome == 'refused' then
  local refusals = redis.call('HINCRBY', k_call(sid), 'refusals', '1')
  if refusals >= MAX_REFUSALS then
    call_finish(sid, c, 'overflowed', ARGV[5])
    event('overflowed', { 'call', sid, 'queue', c.queue, 'to', 'overflow_action',
      'reason', ARGV[5] or '', 'waited_ms', NOW - num(c.entered_ms, NOW) })
    for _, aid in ipairs(call_agents(c)) do
      local a = hgetall(k_agent(aid))
      if a then agent_release(aid, a, 0) end
    end
    return { 'refused', c.queue }
  end
  outcome = 'canceled'
end

-- ring_all: one agent's leg ended while others still ring: that agent alone is released
if group and scope == 'leg' then
  local rest = list_without(c.ringing, id)
  if rest ~= ',' then
    redis.call('HSET', k_call(sid), 'ringing', rest)
    local a = hgetall(k_agent(id))
    if a then release_unanswered(id, a, outcome) end
    event('ring_ended', { 'call', sid, 'agent', id, 'queue', c.queue, 'attempt', attempt,
      'outcome', outcome })
    return { 'released', status_of(id), c.queue, outcome }
  end
end

-- One attempt only (`fallback` switched off, by an admin or the file): an inbound call its
-- agent did not answer leaves the line for the queue's overflow action, as a missed call did
-- before callq. A ring cut by something not the agent's doing still goes back in line.
local fallback = redis.call('HGET', K_SWITCHES, 'feature:fallback') or cfg.fallback or '1'
local tag = 'requeued'
if fallback == '0' and outcome ~= 'canceled' and c.kind ~= 'callback' then
  tag = 'missed'
  call_finish(sid, c, 'overflowed', 'no_answer')
  event('overflowed', { 'call', sid, 'queue', c.queue, 'to', 'overflow_action',
    'reason', 'no_answer', 'agent', id, 'attempt', attempt, 'outcome', outcome,
    'waited_ms', NOW - num(c.entered_ms, NOW) })
else
  call_requeue(sid, c)
  event('requeued', { 'call', sid, 'agent', id, 'queue', c.queue, 'attempt', attempt,
    'outcome', outcome })
end
for _, aid in ipairs(call_agents(c)) do
  local a = hgetall(k_agent(aid))
  if a then release_unanswered(aid, a, outcome) end
end
return { tag, status_of(id), c.queue, outcome }
