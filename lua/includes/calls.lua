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

-- What an offer's result (call_offer_view) and a call's end (call_end_view) read of call
-- `sid`, or nil when there is no such call: a few of the call hash's two dozen fields, read
-- with HMGET, which costs Redis well under HGETALL's every field turned into a Lua string
-- (each field named costs it a scan of the hash from its first field, so enqueue puts these
-- first). Each table is made by one constructor, sized once, where a table filled field by
-- field is rebuilt at every power of two. A missing field reads nil.
local function call_offer_view(sid)
  local v = redis.call('HMGET', k_call(sid), 'state', 'agent', 'group', 'ringing', 'attempts',
    'queue', 'kind', 'rank', 'offered_ms', 'entered_ms')
  if not v[1] then return nil end
  return { state = v[1], agent = v[2] or nil, group = v[3] or nil, ringing = v[4] or nil,
    attempts = v[5] or nil, queue = v[6] or nil, kind = v[7] or nil, rank = v[8] or nil,
    offered_ms = v[9] or nil, entered_ms = v[10] or nil }
end

local function call_end_view(sid)
  local v = redis.call('HMGET', k_call(sid), 'state', 'agent', 'group', 'ringing', 'attempts',
    'queue', 'kind', 'answered_ms')
  if not v[1] then return nil end
  return { state = v[1], agent = v[2] or nil, group = v[3] or nil, ringing = v[4] or nil,
    attempts = v[5] or nil, queue = v[6] or nil, kind = v[7] or nil,
    answered_ms = v[8] or nil }
end

-- Whether `id` is in the list `set` (the form ",a,b,": `rang`, `group`, `ringing`).
local function in_list(set, id)
  return set ~= nil and set ~= '' and string.find(set, ',' .. id .. ',', 1, true) ~= nil
end

-- The list `set` (",a,b,") without `id` (',' when nothing is left).
local function list_without(set, id)
  local at = string.find(set, ',' .. id .. ',', 1, true)
  if at == nil then return set end
  return string.sub(set, 1, at) .. string.sub(set, at + #id + 2)
end

-- Whether the call's current offer is the one (agent, attempt) names. A ring_all offer
-- (`group`: every agent it rang, ",a,b,") has a name per agent it rang: any of them names it.
local function is_current_offer(c, id, attempt)
  return (c.state == 'offered' or c.state == 'connected')
    and (c.agent == id or in_list(c.group, id))
    and num(c.attempts, 0) == num(attempt, -1)
end

-- The agents an offered or connected call holds (each counted in its `active`): the agents of
-- a ring_all offer still ringing (`ringing`, ",a,b,"), else its one agent.
local function call_agents(c)
  local out = {}
  if c.state == 'offered' and c.ringing ~= nil and c.ringing ~= '' then
    for id in string.gmatch(c.ringing, '[^,]+') do out[#out + 1] = id end
  elseif c.agent ~= nil and c.agent ~= '' then
    out[1] = c.agent
  end
  return out
end

-- A call of queue q joined its line: wake a worker, unless no claim could offer it now. That
-- is when the queue widens to nobody else (no `widen` steps), no agent of any of its tiers is
-- ready (every ready set of a skill holds only agents of the plain ones), and no wrap-up has
-- ended unpromoted (a claim would promote it first). The call then waits for an agent to
-- become ready, which wakes a worker itself, so while every agent is busy a call joining the
-- line costs no claim. The common case, someone of tier 1 ready, costs one ZCARD.
local function wake_for_line(q)
  if WAKE_QUIET then return end
  if redis.call('ZCARD', k_ready(q, 1)) > 0 then return wake() end
  local cfg = queue_cfg(q)
  if cfg == nil or (cfg.widen ~= nil and cfg.widen ~= '') then return wake() end
  for t = 2, setting(cfg, 'tiers', 1) do
    if redis.call('ZCARD', k_ready(q, t)) > 0 then return wake() end
  end
  if redis.call('ZRANGEBYSCORE', K_WRAPUP, '-inf', NOW_S, 'LIMIT', '0', '1')[1] ~= nil then
    wake()
  end
end

-- The call is in line again, at its original rank (not answered, lease passed, retry due).
local function call_requeue(sid, c)
  local state = 'waiting'
  if c.kind == 'callback' then state = 'callback' end
  redis.call('ZREM', K_OFFERS, sid)
  redis.call('ZREM', K_CONNECTED, sid)
  redis.call('HSET', k_call(sid), 'state', state, 'agent', '', 'phase', '', 'ringing', '')
  redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
  wake_for_line(c.queue)
end

-- A call reached a final state: out of the sets its state kept it in, kept a day for
-- history. (The scripts keep a call in its state's sets only; were a stray entry left
-- elsewhere all the same, the round that reaches it drops it: claim, take_checks and the
-- arrival and retry promotions each remove an entry whose call is not in their state.)
local function call_finish(sid, c, state, reason)
  local was = c.state
  if was == 'waiting' or was == 'callback' then
    redis.call('ZREM', k_waiting(c.queue), sid)
    if was == 'callback' then redis.call('ZREM', K_RETRY, sid) end
  elseif was == 'arriving' then
    redis.call('ZREM', K_ARRIVING, sid)
  elseif was == 'offered' then
    redis.call('ZREM', K_OFFERS, sid)
  elseif was == 'connected' then
    redis.call('ZREM', K_CONNECTED, sid)
  else
    redis.call('ZREM', k_waiting(c.queue), sid)
    redis.call('ZREM', K_ARRIVING, sid)
    redis.call('ZREM', K_OFFERS, sid)
    redis.call('ZREM', K_CONNECTED, sid)
    redis.call('ZREM', K_RETRY, sid)
  end
  redis.call('HSET', k_call(sid), 'state', state, 'ended_ms', NOW_S, 'end_reason', reason or '',
    'phase', '', 'ringing', '')
  redis.call('PEXPIRE', k_call(sid), RETENTION_MS)
  redis.call('PEXPIRE', k_call_history(sid), RETENTION_MS)
end

-- How callers leave queue q's line, for the estimated wait (in the queue's stats hash):
-- decayed counts (each leaver weighs LEFT_DECAY of the one after it) of the callers who left
-- it answered or not (`left_n`), of those who gave up (`abandon_n`) and of the seconds they
-- held (`held_s`). abandon_n / held_s is the queue's abandonment rate per waiting caller. `ring_ms`
-- (optional: a caller who was answered) is how long the agent's phone rang, which moves the
-- running mean ring time (`ring_ms`) a tenth of the way in the same read and write.
local LEFT_DECAY = 0.995
local function queue_left(q, held_ms, abandoned, ring_ms)
  local was = redis.call('HMGET', k_queue_stats(q), 'left_n', 'abandon_n', 'held_s', 'ring_ms')
  local gave_up = num(was[2], 0) * LEFT_DECAY
  if abandoned then gave_up = gave_up + 1 end
  local fields = {
    'left_n', string.format('%.4f', num(was[1], 0) * LEFT_DECAY + 1),
    'abandon_n', string.format('%.4f', gave_up),
    'held_s', string.format('%.3f', num(was[3], 0) * LEFT_DECAY + math.max(held_ms, 0) / 1000) }
  if ring_ms then
    local mean = num(was[4], ring_ms)
    fields[7], fields[8] = 'ring_ms', int(math.floor(mean * 0.9 + ring_ms * 0.1))
  end
  redis.call('HSET', k_queue_stats(q), unpack(fields))
end

-- Twilio holds the caller now (or has had time enough to): the call joins its line.
local function call_arrive(sid, c)
  redis.call('ZREM', K_ARRIVING, sid)
  redis.call('HSET', k_call(sid), 'state', 'waiting')
  redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
  wake_for_line(c.queue)
end

-- Arrivals whose grace passed without a wait request: offer them anyway.
local function promote_arrivals()
  local due = redis.call('ZRANGEBYSCORE', K_ARRIVING, '-inf', NOW_S, 'LIMIT', '0', '100')
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
  local due = redis.call('ZRANGEBYSCORE', K_RETRY, '-inf', NOW_S, 'LIMIT', '0', '100')
  for _, sid in ipairs(due) do
    redis.call('ZREM', K_RETRY, sid)
    local c = hgetall(k_call(sid))
    if c and c.state == 'callback' then
      redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
      wake_for_line(c.queue)
    end
  end
  return #due
end
