-- abandon: the caller left (hung up, or Twilio confirmed the call is over) before being
-- connected. An arriving or waiting call leaves its line; an offered call's agent is released
-- at once, with no miss counted. A connected call is left alone (its end is `complete`), and
-- so is a callback request: the caller hanging up (reason 'hangup') is expected, the call
-- keeps its place in line, and once offered its own legs (agent first, then the customer)
-- carry it. A hangup while the agent's phone was ringing (Twilio had accepted the offer) is
-- not taken at its word: the agent may have answered and talked with the callbacks saying so
-- lost, so the call's check is brought forward and the worker asks Twilio which it was.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  reason: 'hangup' (Twilio said the caller hung up) | 'call_gone' (Twilio said the
--          call is over when asked) | another word for the record
-- Returns  {'abandoned', prior_state, queue} | {'stale', state}
--
-- A caller who hung up in line (reason 'hangup') from a number that can call again leaves
-- their rank behind for the queue's resume window (`queue:<q>:resume:<from>`, see enqueue).
-- @include calls.lua

local sid, reason = ARGV[1], ARGV[2]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
local s = c.state
if c.kind == 'callback' and reason == 'hangup' then
  -- the caller's own leg ended after asking for a callback: expected; the callback goes on
  -- (on its own legs) whatever state it is in, so report it as a callback and change nothing
  return { 'stale', 'callback' }
end
if s ~= 'waiting' and s ~= 'arriving' and s ~= 'offered' then return { 'stale', s } end
if s == 'offered' and c.phase == 'ringing' and reason == 'hangup' then
  redis.call('ZADD', K_OFFERS, NOW_S, sid)
  wake()
  return { 'stale', s }
end
call_finish(sid, c, 'abandoned', reason)
local resume_ms = num((queue_cfg(c.queue) or {}).resume_ms, 0)
if reason == 'hangup' and c.kind ~= 'callback' and resume_ms > 0
  and string.match(c.from or '', '^%+%d+$') then
  redis.call('SET', k_resume(c.queue, c.from), c.rank, 'PX', resume_ms)
end
if c.kind ~= 'callback' and s ~= 'arriving' then
  queue_left(c.queue, NOW - num(c.entered_ms, NOW), true)
end
if s == 'offered' then
  -- its agent, or every agent a ring_all offer still rings
  for _, id in ipairs(call_agents(c)) do
    local a = hgetall(k_agent(id))
    if a then agent_release(id, a, 0) end
  end
end
event('abandoned', { 'call', sid, 'queue', c.queue, 'from_state', s, 'reason', reason,
  'waited_ms', NOW - num(c.entered_ms, NOW) })
return { 'abandoned', s, c.queue }
