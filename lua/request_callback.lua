-- request_callback: a waiting caller asked to be called back. The call keeps its rank (virtual hold);
-- when it reaches an agent, the worker rings the agent first and then the customer.
-- Idempotent: a call that is a callback request already answers 'callback' again.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  number to call back (E.164)
-- Returns  {'callback', queue} (taken now) | {'callback'} (taken before) | {'stale', state}
-- @include calls.lua

local sid = ARGV[1]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
-- a repeated request (Twilio retried the webhook) is taken already, whatever became of it
if c.kind == 'callback' then return { 'callback' } end
if c.state ~= 'waiting' then return { 'stale', c.state } end
redis.call('HSET', k_call(sid), 'state', 'callback', 'kind', 'callback', 'callback_to', ARGV[2])
event('callback', { 'call', sid, 'queue', c.queue })
return { 'callback', c.queue }
