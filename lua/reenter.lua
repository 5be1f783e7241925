-- reenter: Twilio asked for the wait document of a call callq holds as abandoned for a reason
-- other than the caller hanging up (Twilio's word that the caller is gone came from a check
-- that raced the caller's return, or a mistake): the caller is evidently on hold, so the call
-- rejoins its line at its original rank rather than hearing music forever.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- Returns  {'reentered'} | {'stale', state}
-- @include calls.lua

local sid = ARGV[1]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if c.state ~= 'abandoned' or c.kind ~= 'inbound' or c.end_reason == 'hangup' then
  return { 'stale', c.state }
end
redis.call('PERSIST', k_call(sid))
redis.call('HDEL', k_call(sid), 'ended_ms')
redis.call('HSET', k_call(sid), 'state', 'waiting', 'agent', '', 'end_reason', '')
redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
event('reentered', { 'call', sid, 'queue', c.queue, 'was', c.end_reason or '' })
wake()
return { 'reentered' }
