-- overflow: a waiting caller leaves for the queue's overflow action, having reached its max
-- wait, or for its no-agents action, nobody of the queue being logged in (voicemail, a
-- number, goodbye: the caller's TwiML carries that out).
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  where it went (for the record)
-- ARGV[3]  the rule: 'max_wait' | 'no_agents' (kept as the call's end_reason)
-- Returns  {'overflowed', queue} | {'stale', state}
-- @include calls.lua

local sid = ARGV[1]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'waiting' then return { 'stale', c.state } end
call_finish(sid, c, 'overflowed', ARGV[3])
event('overflowed', { 'call', sid, 'queue', c.queue, 'to', ARGV[2], 'rule', ARGV[3],
  'waited_ms', NOW - num(c.entered_ms, NOW) })
return { 'overflowed', c.queue }
