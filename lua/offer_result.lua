-- offer_result: what became of an offer. 'answered' connects the call, makes the agent busy
-- and schedules the first check that the conversation still goes on. 'no-answer', 'busy'
-- and 'failed' put the call back in line at its original rank and give the agent the
-- queue's delay for that outcome (no-answer, busy or failed delay); after the queue's max no-answer in a row the agent is paused (its
-- device is probably gone). 'canceled' puts the call back without counting a miss (Twilio
-- could not ring, or the ring was cut by something not the agent's doing). 'refused' means
-- Twilio refused this call's redirect for good (a permanent error): the agent is released
-- without a miss and the call goes back in line; after MAX_REFUSALS refusals the call
-- overflows instead, so the caller's next wait request carries out the queue's overflow
-- action rather than holding for an agent Twilio will never let them reach. A result for
-- any offer but the current one, named by (agent, attempt), changes nothing. With the
-- `fallback` switch off, an unanswered inbound call overflows instead of going back in line.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  agent id the offer went to
-- ARGV[3]  attempt (the offer's number)
-- ARGV[4]  outcome: answered | no-answer | busy | failed | canceled | refused
-- ARGV[5]  the Twilio CallSid of the agent's leg when known, or ''; for 'refused', the reason
-- Returns  {'connected', queue, kind, waited_ms} | {'requeued', agent_status, queue, outcome}
--          | {'missed', agent_status, queue, outcome} (fallback off: overflowed)
--          | {'refused', queue} (overflowed) | {'stale', state}
-- @include calls.lua

local MAX_REFUSALS = 3

local sid, id, attempt, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'offered' or not is_current_offer(c, id, attempt) then
  return { 'stale', c.state }
end
local a = hgetall(k_agent(id))
local cfg = queue_cfg(c.queue) or {}

if outcome == 'answered' then
  redis.call('ZREM', K_OFFERS, sid)
  redis.call('ZADD', K_CONNECTED, NOW + num(cfg.check_after_ms, 300000), sid)
  if ARGV[5] ~= nil and ARGV[5] ~= '' then
    redis.call('HSET', k_call(sid), 'state', 'connected', 'answered_ms', NOW, 'phase', '',
      'checks', 0, 'leg_sid', ARGV[5])
  else
    redis.call('HSET', k_call(sid), 'state', 'connected', 'answered_ms', NOW, 'phase', '',
      'checks', 0)
  end
  if a then
    local fields = { misses = 0, handled = num(a.handled, 0) + 1 }
    fields['fc:' .. c.queue] = faded_plus(a['fc:' .. c.queue], 1, cfg.half_life_ms)
    if a.status == 'reserved' then fields.status = 'busy' end
    agent_set(id, a, fields)
  end
  if c.kind ~= 'callback' then
    -- the estimated wait's inputs: the ring callers wait through, and how long they held
    local ring = NOW - num(c.offered_ms, NOW)
    local mean = num(cfg.ring_ms, ring)
    redis.call('HSET', k_queue(c.queue), 'ring_ms', int(math.floor(mean * 0.9 + ring * 0.1)))
    queue_left(c.queue, NOW - num(c.entered_ms, NOW), false)
  end
  event('connected', { 'call', sid, 'agent', id, 'queue', c.queue, 'attempt', attempt,
    'waited_ms', NOW - num(c.entered_ms, NOW) })
  return { 'connected', c.queue, c.kind or 'inbound', int(NOW - num(c.entered_ms, NOW)) }
end

if outcome == 'refused' then
  local refusals = redis.call('HINCRBY', k_call(sid), 'refusals', 1)
  if refusals >= MAX_REFUSALS then
    call_finish(sid, c, 'overflowed', ARGV[5])
    event('overflowed', { 'call', sid, 'queue', c.queue, 'to', 'overflow_action',
      'reason', ARGV[5] or '', 'waited_ms', NOW - num(c.entered_ms, NOW) })
    if a then agent_release(id, a, 0) end
    return { 'refused', c.queue }
  end
  outcome = 'canceled'
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
if a == nil then return { tag, 'unknown', c.queue, outcome } end
if outcome == 'canceled' then
  agent_release(id, a, 0)
  return { tag, a.status, c.queue, outcome }
end
local misses = num(a.misses, 0) + 1
agent_set(id, a, { misses = misses })
if misses >= num(cfg.max_no_answer, 3) and num(a.active, 0) <= 1 then
  agent_set(id, a, { active = 0, pending = '', pending_reason = '' })
  agent_settle(id, a, 'paused', 0, 'no_answer')
  return { tag, a.status, c.queue, outcome }
end
-- the rest before the next offer, by what became of this one
local rest = num(cfg.no_answer_delay_ms, 0)
if outcome == 'busy' then
  rest = num(cfg.busy_delay_ms, rest)
elseif outcome == 'failed' then
  rest = num(cfg.failed_delay_ms, rest)
end
agent_release(id, a, rest)
return { tag, a.status, c.queue, outcome }
