-- arrive: Twilio asked for the wait document of an arriving caller, so it holds them and
-- will accept a redirect: the call joins its line at the rank it got on entry.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- Returns  {'arrived'} | {'stale', state}  (state 'unknown' when there is no such call)
-- @include calls.lua

local sid = ARGV[1]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'arriving' then return { 'stale', c.state } end
call_arrive(sid, c)
return { 'arrived' }
