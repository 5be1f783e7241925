-- offer_result: what became of an offer. 'answered' connects the call and makes the agent
-- busy. 'no-answer', 'busy' and 'failed' put the call back in line at its original rank and
-- give the agent the queue's no-answer delay; after the queue's max no-answer in a row the
-- agent is paused (its device is probably gone). 'canceled' puts the call back without
-- counting a miss. Order-tolerant: a result for an offer that is no longer current is ignored.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  agent id the offer went to
-- ARGV[3]  outcome: answered | no-answer | busy | failed | canceled
-- Returns  {'connected'} | {'requeued', agent_status} | {'stale', state}
-- @include common.lua

local sid, id, outcome = ARGV[1], ARGV[2], ARGV[3]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'offered' or c.agent ~= id then return { 'stale', c.state } end
redis.call('ZREM', K_OFFERS, sid)
local a = hgetall(k_agent(id))
local cfg = queue_cfg(c.queue) or {}

if outcome == 'answered' then
  redis.call('HSET', k_call(sid), 'state', 'connected', 'answered_ms', NOW)
  if a then
    local fields = { misses = 0, handled = num(a.handled, 0) + 1 }
    if a.status == 'reserved' then fields.status = 'busy' end
    agent_set(id, a, fields)
  end
  event('connected', { 'call', sid, 'agent', id, 'queue', c.queue,
    'waited_ms', NOW - num(c.entered_ms, NOW) })
  return { 'connected' }
end

call_requeue(sid, c)
event('requeued', { 'call', sid, 'agent', id, 'queue', c.queue, 'outcome', outcome })
if a == nil then return { 'requeued', 'unknown' } end
if outcome == 'canceled' then
  agent_release(id, a, 0)
  return { 'requeued', a.status }
end
local misses = num(a.misses, 0) + 1
agent_set(id, a, { misses = misses })
if misses >= num(cfg.max_no_answer, 3) and num(a.active, 0) <= 1 then
  agent_set(id, a, { active = 0, pending = '', pending_reason = '' })
  agent_settle(id, a, 'paused', 0, 'no_answer')
  return { 'requeued', a.status }
end
agent_release(id, a, num(cfg.no_answer_delay_ms, 0))
return { 'requeued', a.status }
