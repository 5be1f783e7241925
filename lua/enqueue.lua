-- enqueue: a call enters a queue. Idempotent per CallSid: a retried webhook finds the call it
-- already made and changes nothing.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  queue name
-- ARGV[3]  From
-- ARGV[4]  To
-- ARGV[5]  priority boost, ms (rank = entered_ms - boost; a bigger boost is served sooner)
-- ARGV[6]  kind: 'inbound' | 'callback' (a callback is returned to From)
-- Returns  {'new' | 'existing', state, rank} | {'unknown_queue'}
-- @include common.lua

local sid, q = ARGV[1], ARGV[2]
local existing = redis.call('HMGET', k_call(sid), 'state', 'rank')
if existing[1] then return { 'existing', existing[1], existing[2] } end
if redis.call('SISMEMBER', K_QUEUES, q) == 0 then return { 'unknown_queue' } end
local boost = num(ARGV[5], 0)
local rank = NOW - boost
local kind = ARGV[6]
local state = 'waiting'
if kind == 'callback' then state = 'callback' end
redis.call('HSET', k_call(sid),
  'sid', sid, 'queue', q, 'from', ARGV[3], 'to', ARGV[4], 'priority', boost, 'rank', rank,
  'kind', kind, 'state', state, 'agent', '', 'attempts', 0, 'rang', ',', 'entered_ms', NOW)
if kind == 'callback' then
  -- a callback requested on arrival (e.g. after hours): call back the number that called
  redis.call('HSET', k_call(sid), 'callback_to', ARGV[3])
end
redis.call('ZADD', k_waiting(q), rank, sid)
event('enqueue', { 'call', sid, 'queue', q, 'rank', rank })
wake()
return { 'new', state, tostring(rank) }
