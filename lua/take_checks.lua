-- take_checks: hand a worker the calls whose state needs Twilio's word: offers whose lease
-- passed (the worker died, or the ring's callbacks never came) and connected calls due for a
-- check that the conversation still goes on (their end callbacks may be lost). Each taken
-- call's deadline moves `check lease` ahead, so one worker asks at a time and another takes
-- over if it dies. The worker then asks Twilio and settles the call with the transition
-- Twilio's answer calls for (offer_result, complete, abandon, callback_result, extend_offer).
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  most calls to take
-- ARGV[2]  check lease, ms
-- Returns  a list of {CallSid, state, agent, attempt, kind, phase, leg_sid, identity,
--          offered_ms, checks} (offered_ms: when this offer was made, so legs Twilio created
--          for it can be told from earlier ones; checks: how many times the call was taken
--          for a check since its last change), then, for a ring_all offer, agent and identity
--          of every agent it still rings
-- @include calls.lua

local limit = tonumber(ARGV[1]) or 20
local lease = tonumber(ARGV[2]) or 10000
local out = {}
for _, key in ipairs({ K_OFFERS, K_CONNECTED }) do
  local want = 'offered'
  if key == K_CONNECTED then want = 'connected' end
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', NOW_S, 'LIMIT', '0', int(limit))) do
    local c = hgetall(k_call(sid))
    if c == nil or c.state ~= want then
      redis.call('ZREM', key, sid)
    elseif #out < limit then
      redis.call('ZADD', key, int(NOW + lease), sid)
      local checks = redis.call('HINCRBY', k_call(sid), 'checks', '1')
      local identity = redis.call('HGET', k_agent(c.agent), 'identity') or c.agent
      local row = { sid, c.state, c.agent or '', c.attempts or '0', c.kind or 'inbound',
        c.phase or '', c.leg_sid or '', identity, c.offered_ms or '', int(checks) }
      -- a ring_all offer: every agent still ringing, so Twilio's legs to each can be read
      if c.state == 'offered' and c.group ~= nil and c.group ~= '' then
        for _, id in ipairs(call_agents(c)) do
          row[#row + 1] = id
          row[#row + 1] = redis.call('HGET', k_agent(id), 'identity') or id
        end
      end
      out[#out + 1] = row
    end
  end
end
return out
