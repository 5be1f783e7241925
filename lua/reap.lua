-- reap: the timed housekeeping every worker runs, safe from all of them at once. Agents whose
-- heartbeat key expired lose their presence (their chosen status stays); wrap-ups that ended
-- are promoted; arrivals whose grace passed join their line; callbacks whose retry is due
-- rejoin theirs. Offers whose lease passed are not touched here: Twilio may be ringing the
-- agent or already connected, so the worker asks it first (`take_checks`).
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  most items of each kind to handle in one run
-- Returns  {agents_lost, wrapups_ended, arrivals, retries}
-- @include calls.lua

local limit = tonumber(ARGV[1]) or 100
local lost = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_HEARTBEATS, '-inf', NOW_S, 'LIMIT', '0', int(limit))) do
  if redis.call('EXISTS', k_alive(id)) == 0 then
    redis.call('ZREM', K_HEARTBEATS, id)
    local a = hgetall(k_agent(id))
    if a and agent_lost(id, a) then lost = lost + 1 end
  end
end
local promoted = promote_wrapups()
local arrived = promote_arrivals()
local retried = promote_retries()
return { lost, promoted, arrived, retried }
