-- transfer: a waiting call moves to another queue (an overflow or IVR rule), keeping its
-- rank so the time already waited still counts. `transferred_ms` records when, so the new
-- queue's max wait can count from the move.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  the queue to move to
-- Returns  {'transferred', from_queue} | {'stale', state} | {'unknown_queue'}
-- @include calls.lua

local sid, to = ARGV[1], ARGV[2]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'waiting' then return { 'stale', c.state } end
if redis.call('SISMEMBER', K_QUEUES, to) == 0 then return { 'unknown_queue' } end
if c.queue == to then return { 'transferred', to } end
redis.call('ZREM', k_waiting(c.queue), sid)
redis.call('ZADD', k_waiting(to), c.rank, sid)
redis.call('HSET', k_call(sid), 'queue', to, 'transferred_ms', NOW_S)
event('transferred', { 'call', sid, 'queue', to, 'from_queue', c.queue })
wake()
return { 'transferred', c.queue }
