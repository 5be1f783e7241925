-- overflow: a waiting caller reached the queue's max wait and leaves for the overflow action
-- (voicemail, a number, another queue: the caller's TwiML carries that out).
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  where it went (for the record)
-- Returns  {'overflowed', queue} | {'stale', state}
-- @include calls.lua

local sid = ARGV[1]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'waiting' then return { 'stale', c.state } end
call_finish(sid, c, 'overflowed', 'max_wait')
event('overflowed', { 'call', sid, 'queue', c.queue, 'to', ARGV[2],
  'waited_ms', NOW - num(c.entered_ms, NOW) })
return { 'overflowed', c.queue }
