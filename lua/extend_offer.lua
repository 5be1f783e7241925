-- extend_offer: the worker reached Twilio and the agent's phone is ringing; stretch the offer
-- lease to cover the ring time. Does nothing if the offer is no longer this agent's.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  agent id
-- ARGV[3]  new lease, ms from now
-- Returns  {'ok'} | {'stale', state}
-- @include common.lua

local sid, id = ARGV[1], ARGV[2]
local c = redis.call('HMGET', k_call(sid), 'state', 'agent')
if c[1] ~= 'offered' or c[2] ~= id then return { 'stale', c[1] or 'unknown' } end
redis.call('ZADD', K_OFFERS, 'XX', NOW + tonumber(ARGV[3]), sid)
return { 'ok' }
