-- complete: a connected call ended. The agent starts the queue's wrap-up (or takes a deferred
-- paused/offline). Also accepts a call still marked offered, since Twilio may report the
-- end of the <Dial> before the agent leg's 'answered' callback arrives.
--
-- A callback is completed only on word that the customer was reached (the customer <Dial>'s
-- result, or a check with Twilio): the agent's own leg ending says nothing about the
-- customer, so then the call's check is brought forward and the worker asks Twilio. Its
-- agent's wrap-up lasts at least WIND_DOWN_MS, as the agent's leg ends just after.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  agent id the offer went to ('' when the sender cannot know: the caller's own leg;
--          any agent of a ring_all offer names it)
-- ARGV[3]  attempt ('' likewise)
-- ARGV[4]  source: 'dial' (a <Dial> result) | 'leg' (the agent leg ended) | 'status' (the
--          caller's call ended) | 'check' (Twilio, asked by the worker)
-- Returns  {'completed', agent, queue, kind} | {'check'} | {'stale', state} (agent '' when a
--          ring_all offer ended before callq learnt who answered; every agent it rang is
--          then released with no wrap-up)
--
-- The agent leg of a callback whose customer was not reached ends after `callback_result`
-- moved the call on: then this frees the agent left winding down for it (a 'stale' reply).
-- @include calls.lua

local sid, id, attempt, source = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local c = call_end_view(sid)
if c == nil then return { 'stale', 'unknown' } end
if source == 'leg' and id ~= '' and not is_current_offer(c, id, attempt) then
  local a = hgetall(k_agent(id))
  if a and a.status == 'wrapup' and a.winding_down == sid .. ':' .. attempt then
    agent_settle(id, a, 'available', 0, '')
  end
  return { 'stale', c.state }
end
if c.state ~= 'connected' and c.state ~= 'offered' then return { 'stale', c.state } end
if id ~= '' and not is_current_offer(c, id, attempt) then return { 'stale', c.state } end
-- a ring_all offer: only the agent on the call (or, still offered, one still ringing) speaks
-- for its own leg; the others' legs never carried the conversation
local group = c.group ~= nil and c.group ~= ''
if group and source == 'leg' and ((c.state == 'connected' and id ~= c.agent)
    or (c.state == 'offered' and not in_list(c.ringing, id))) then
  return { 'stale', c.state }
end
if c.kind == 'callback' and (source == 'leg' or source == 'status') then
  -- due now: the next worker round asks Twilio (offered: whether the agent answered at all)
  if c.state == 'offered' then
    redis.call('ZADD', K_OFFERS, NOW_S, sid)
  else
    redis.call('ZADD', K_CONNECTED, NOW_S, sid)
  end
  wake()
  return { 'check' }
end
local agent = c.agent
-- a ring_all offer that ended before any 'answered' reached callq: the agent whose own leg
-- ended (or a check found talking) had the call; on the `<Dial>`'s word alone nobody can
-- tell which did, so every agent still ringing is released with no wrap-up
local others = {}
if c.state == 'offered' and group then
  if (source == 'leg' or source == 'check') and in_list(c.ringing, id) then
    agent = id
  else
    agent = ''
  end
  for _, other in ipairs(call_agents(c)) do
    if other ~= agent then others[#others + 1] = other end
  end
end
local answered = num(c.answered_ms, NOW)
if c.state == 'offered' then redis.call('HSET', k_call(sid), 'answered_ms', NOW_S) end
if c.state == 'offered' and group and agent ~= '' then
  redis.call('HSET', k_call(sid), 'agent', agent)
end
call_finish(sid, c, 'completed', source)
local cfg = queue_cfg(c.queue) or {}
local wrapup = setting(cfg, 'wrapup_ms', 0)
if c.kind == 'callback' then wrapup = math.max(wrapup, WIND_DOWN_MS) end
-- running mean handle time (talk + wrap-up), the basis of the estimated wait
local handle = NOW - answered + wrapup
local aht = num(redis.call('HGET', k_queue_stats(c.queue), 'aht_ms'), handle)
redis.call('HSET', k_queue_stats(c.queue), 'aht_ms', int(math.floor(aht * 0.9 + handle * 0.1)))
for _, other in ipairs(others) do
  local oa = hgetall(k_agent(other))
  if oa then agent_release(other, oa, 0) end
end
local a = nil
if agent ~= nil and agent ~= '' then a = hgetall(k_agent(agent)) end
if a then
  local fields = {}
  if c.state == 'offered' then
    fields = { misses = 0, handled = num(a.handled, 0) + 1 }
    fields['fc:' .. c.queue] = faded_plus(a['fc:' .. c.queue], 1, cfg)
  end
  -- talk time, for least_talk_time (in seconds, at least a millisecond's worth)
  fields['tt:' .. c.queue] = faded_plus(a['tt:' .. c.queue],
    math.max(NOW - answered, 1) / 1000, cfg)
  agent_release(agent, a, wrapup, fields)
end
event('completed', { 'call', sid, 'agent', agent, 'queue', c.queue, 'talk_ms', NOW - answered,
  'source', source })
return { 'completed', agent, c.queue, c.kind or 'inbound' }
