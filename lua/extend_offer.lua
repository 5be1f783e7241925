-- extend_offer: Twilio accepted the worker's request and the agent's phone rings; stretch the
-- offer lease over the ring. Records the Twilio call that rings the agent when it is known
-- (a callback's agent-first call), so a later check can ask Twilio about it. Also used after
-- a check found Twilio still ringing the agent (offered) or the conversation still going
-- (connected): the next check moves out by the given time. Does nothing unless this is
-- still the named offer.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  agent id the offer went to
-- ARGV[3]  attempt (the offer's number)
-- ARGV[4]  new lease, ms from now; '' for the queue's own (ring timeout + 30 s while
--          offered, check_after once connected)
-- ARGV[5]  the Twilio CallSid ringing the agent, or ''
-- Returns  {'ok'} | {'stale', state}
-- @include calls.lua

local sid, id, attempt = ARGV[1], ARGV[2], ARGV[3]
local c = hgetall(k_call(sid))
if c == nil then return { 'stale', 'unknown' } end
if not is_current_offer(c, id, attempt) then return { 'stale', c.state } end
local lease = tonumber(ARGV[4])
if lease == nil then
  local cfg = queue_cfg(c.queue) or {}
  if c.state == 'offered' then
    lease = setting(cfg, 'ring_timeout_ms', 20000) + 30000
  else
    lease = setting(cfg, 'check_after_ms', 300000)
  end
end
if c.state == 'offered' then
  redis.call('ZADD', K_OFFERS, int(NOW + lease), sid)
  redis.call('HSET', k_call(sid), 'phase', 'ringing', 'checks', '0')
else
  redis.call('ZADD', K_CONNECTED, int(NOW + lease), sid)
  redis.call('HSET', k_call(sid), 'checks', '0')
end
if ARGV[5] ~= nil and ARGV[5] ~= '' then redis.call('HSET', k_call(sid), 'leg_sid', ARGV[5]) end
return { 'ok' }
