-- reap: return what the dead left behind. Offers whose lease passed (a worker died between
-- claim and Twilio, or Twilio's callbacks were lost) put the call back at its rank and free
-- the agent with no miss counted; agents whose heartbeat key expired go offline; wrap-ups
-- that ended are promoted. Safe to run from every worker at once.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  most items of each kind to handle in one run
-- Returns  {expired_offers, agents_lost, wrapups_ended}
-- @include common.lua

local limit = tonumber(ARGV[1]) or 100
local expired = 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K_OFFERS, '-inf', NOW, 'LIMIT', 0, limit)) do
  redis.call('ZREM', K_OFFERS, sid)
  local c = hgetall(k_call(sid))
  if c and c.state == 'offered' then
    expired = expired + 1
    call_requeue(sid, c)
    event('requeued', { 'call', sid, 'agent', c.agent, 'queue', c.queue,
      'outcome', 'lease_expired' })
    local a = hgetall(k_agent(c.agent))
    if a then agent_release(c.agent, a, 0) end
  end
end
local lost = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_HEARTBEATS, '-inf', NOW, 'LIMIT', 0, limit)) do
  if redis.call('EXISTS', k_alive(id)) == 0 then
    redis.call('ZREM', K_HEARTBEATS, id)
    local a = hgetall(k_agent(id))
    if a and a.status ~= 'offline' then
      lost = lost + 1
      agent_lost(id, a)
    end
  end
end
local promoted = promote_wrapups()
return { expired, lost, promoted }
