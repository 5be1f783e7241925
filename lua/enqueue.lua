-- enqueue: a call enters a queue. Idempotent per CallSid: a retried webhook finds the call it
-- already made and changes nothing.
--
-- An inbound caller answered with <Enqueue> is not on hold until Twilio runs that verb, and
-- Twilio refuses to redirect a call before then; so such a call starts `arriving` and joins
-- the line on its first wait request (`arrive`), or after ARRIVE_GRACE_MS at the latest. A
-- caller already holding (re-entering from a wait request) or a callback joins at once.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  queue name
-- ARGV[3]  From
-- ARGV[4]  To
-- ARGV[5]  priority boost, ms (rank = entered_ms - boost; a bigger boost is served sooner)
-- ARGV[6]  kind: 'inbound' | 'callback' (a callback is returned to From)
-- ARGV[7]  'arriving' (Twilio is about to hold the caller) | 'holding' (it holds them now)
-- ARGV[8]  ms the caller already waited before this request (entered_ms = now - this)
-- ARGV[9]  skills this call requires, "billing=3" (from an IVR choice or a priority rule;
--          '' the queue's own)
-- Returns  {'new' | 'existing', state, rank, resumed} | {'unknown_queue'}; resumed is '1'
--          when an inbound caller who hung up in line within the queue's resume window
--          came back and took their old rank again (abandon.lua leaves it), else '0'
-- @include calls.lua

local sid, q, kind = ARGV[1], ARGV[2], ARGV[6]
local existing = redis.call('HMGET', k_call(sid), 'state', 'rank')
if existing[1] then
  local resumed = redis.call('HGET', k_call(sid), 'resumed') or '0'
  return { 'existing', existing[1], existing[2], resumed }
end
if redis.call('SISMEMBER', K_QUEUES, q) == 0 then return { 'unknown_queue' } end
local entered = NOW - math.max(num(ARGV[8], 0), 0)
local boost = num(ARGV[5], 0)
local rank = entered - boost
local resumed = '0'
if kind ~= 'callback' and string.match(ARGV[3] or '', '^%+%d+$') then
  local key = k_resume(q, ARGV[3])
  local kept = tonumber(redis.call('GET', key))
  if kept then
    redis.call('DEL', key)
    if kept < rank then
      rank = kept
      resumed = '1'
    end
  end
end
local state = 'waiting'
if kind == 'callback' then
  state = 'callback'
elseif ARGV[7] == 'arriving' then
  state = 'arriving'
end
-- The fields every transition reads come first, the offer's own among them (empty until an
-- offer): a field read or written is looked for from the hash's first field on.
redis.call('HSET', k_call(sid),
  'state', state, 'agent', '', 'attempts', '0', 'queue', q, 'kind', kind, 'rank', int(rank),
  'entered_ms', int(entered), 'group', '', 'ringing', '', 'offered_ms', '', 'answered_ms', '',
  'rang', ',', 'pinned', '', 'skills', ARGV[9] or '', 'from', ARGV[3], 'to', ARGV[4],
  'sid', sid, 'priority', int(boost), 'resumed', resumed)
if kind == 'callback' then
  -- a callback requested on arrival (e.g. after hours): call back the number that called
  redis.call('HSET', k_call(sid), 'callback_to', ARGV[3])
end
if state == 'arriving' then
  redis.call('ZADD', K_ARRIVING, int(NOW + ARRIVE_GRACE_MS), sid)
else
  redis.call('ZADD', k_waiting(q), int(rank), sid)
  wake_for_line(q)
end
event('enqueue', { 'call', sid, 'queue', q, 'rank', int(rank), 'state', state,
  'resumed', resumed })
return { 'new', state, int(rank), resumed }
