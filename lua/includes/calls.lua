-- calls.lua: the call state machine's shared moves. States: arriving -> waiting -> offered ->
-- connected -> completed, with offered -> waiting (not answered), arriving|waiting|offered ->
-- abandoned (the caller left), waiting -> callback (virtual hold) -> offered -> connected ->
-- completed | callback (retry later) | callback_failed, waiting|offered -> overflowed.
-- An offer is named by (agent, attempt): `attempts` counts offers, so a result that names an
-- earlier offer of the same call, even to the same agent, changes nothing.
-- @include agents.lua

-- Time Twilio gets to put a new caller on hold (run the <Enqueue>) before the call is
-- offered anyway; normally the first wait request makes it offerable long before.
local ARRIVE_GRACE_MS = 10000
-- A call in a final state keeps its hash RETENTION_MS (events.lua) for history, then Redis
-- drops it.
-- A callback's agent-first call goes on a moment after its customer leg ends (the TwiML after
-- the <Dial>): its agent is held at least this long before the next offer.
local WIND_DOWN_MS = 2000

-- Whether the call's current offer is the one (agent, attempt) names.
local function is_current_offer(c, id, attempt)
  return (c.state == 'offered' or c.state == 'connected')
    and c.agent == id
    and num(c.attempts, 0) == num(attempt, -1)
end

-- The call is in line again, at its original rank (not answered, lease passed, retry due).
local function call_requeue(sid, c)
  local state = 'waiting'
  if c.kind == 'callback' then state = 'callback' end
  redis.call('ZREM', K_OFFERS, sid)
  redis.call('ZREM', K_CONNECTED, sid)
  redis.call('HSET', k_call(sid), 'state', state, 'agent', '', 'phase', '')
  redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
  wake()
end

-- A call reached a final state: out of every set, kept a day for history.
local function call_finish(sid, c, state, reason)
  redis.call('ZREM', k_waiting(c.queue), sid)
  redis.call('ZREM', K_ARRIVING, sid)
  redis.call('ZREM', K_OFFERS, sid)
  redis.call('ZREM', K_CONNECTED, sid)
  redis.call('ZREM', K_RETRY, sid)
  redis.call('HSET', k_call(sid), 'state', state, 'ended_ms', NOW, 'end_reason', reason or '',
    'phase', '')
  redis.call('PEXPIRE', k_call(sid), RETENTION_MS)
end

-- Twilio holds the caller now (or has had time enough to): the call joins its line.
local function call_arrive(sid, c)
  redis.call('ZREM', K_ARRIVING, sid)
  redis.call('HSET', k_call(sid), 'state', 'waiting')
  redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
  wake()
end

-- Arrivals whose grace passed without a wait request: offer them anyway.
local function promote_arrivals()
  local due = redis.call('ZRANGEBYSCORE', K_ARRIVING, '-inf', NOW, 'LIMIT', 0, 100)
  for _, sid in ipairs(due) do
    local c = hgetall(k_call(sid))
    if c and c.state == 'arriving' then
      call_arrive(sid, c)
    else
      redis.call('ZREM', K_ARRIVING, sid)
    end
  end
  return #due
end

-- Callbacks whose retry delay ended: back in line at their rank.
local function promote_retries()
  local due = redis.call('ZRANGEBYSCORE', K_RETRY, '-inf', NOW, 'LIMIT', 0, 100)
  for _, sid in ipairs(due) do
    redis.call('ZREM', K_RETRY, sid)
    local c = hgetall(k_call(sid))
    if c and c.state == 'callback' then
      redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
      wake()
    end
  end
  return #due
end
