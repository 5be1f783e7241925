-- common.lua: shared helpers, pasted at load time into every script whose header includes it
-- (an "@include common.lua" line). Every routing key is derived from KEYS[1], the centre's prefix
-- `callq:{C}:`, so all keys a script touches share the `{C}` hash slot.
--
-- Key names (P = KEYS[1]):
--   P..'call:'..sid              hash  the call
--   P..'queue:'..q               hash  the queue's routing settings and running stats
--   P..'queue:'..q..':waiting'   zset  waiting (and callback) CallSids, score = rank
--   P..'queue:'..q..':ready:'..t zset  agents ready for q at tier t, score by strategy
--   P..'agent:'..a               hash  the agent
--   P..'agent:'..a..':alive'     string with PX TTL: '1' device registered, '0' not
--   P..'queues' set, P..'agents' set, P..'offers' zset (lease deadlines),
--   P..'wrapup' zset (ready-at), P..'heartbeats' zset (heartbeat deadlines),
--   P..'wake' list (capped), P..'events' stream (capped)

local P = KEYS[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local NOW = now_ms()

local K_QUEUES = P .. 'queues'
local K_AGENTS = P .. 'agents'
local K_OFFERS = P .. 'offers'
local K_WRAPUP = P .. 'wrapup'
local K_HEARTBEATS = P .. 'heartbeats'
local K_WAKE = P .. 'wake'
local K_EVENTS = P .. 'events'
local WAKE_CAP = 16
local EVENTS_MAXLEN = 100000

local function k_call(sid) return P .. 'call:' .. sid end
local function k_queue(q) return P .. 'queue:' .. q end
local function k_waiting(q) return P .. 'queue:' .. q .. ':waiting' end
local function k_ready(q, tier) return P .. 'queue:' .. q .. ':ready:' .. tier end
local function k_agent(a) return P .. 'agent:' .. a end
local function k_alive(a) return P .. 'agent:' .. a .. ':alive' end

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function num(v, default)
  local n = tonumber(v)
  if n == nil then return default end
  return n
end

-- Wake one waiting worker; the list is capped so a burst leaves a bounded backlog.
local function wake()
  redis.call('LPUSH', K_WAKE, NOW)
  redis.call('LTRIM', K_WAKE, 0, WAKE_CAP - 1)
end

-- Append a transition to the audit stream. `fields` is a flat list of name, value pairs.
local function event(kind, fields)
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', kind, unpack(fields))
end

-- "sales=1,support=2" -> { {'sales', 1}, {'support', 2} }
local function agent_queues(spec)
  local out = {}
  if spec == nil or spec == '' then return out end
  for item in string.gmatch(spec, '[^,]+') do
    local q, tier = string.match(item, '^([^=]+)=(%d+)$')
    if q then out[#out + 1] = { q, tonumber(tier) } end
  end
  return out
end

-- The queue's routing settings, or nil when the queue is not configured.
local function queue_cfg(q)
  local c = hgetall(k_queue(q))
  if c == nil or c.strategy == nil then return nil end
  return c
end

-- The score an agent gets in q's ready sets, by q's strategy (lowest is offered first).
local function ready_score(q, cfg, a)
  local s = cfg.strategy
  if s == 'fewest_calls' then return num(a.handled, 0) end
  if s == 'round_robin' then return num(a['rr:' .. q], 0) end
  if s == 'random' then return 0 end
  return num(a.idle_ms, 0) -- longest_idle
end

local function remove_ready(id, a)
  for _, qt in ipairs(agent_queues(a.queues)) do
    redis.call('ZREM', k_ready(qt[1], qt[2]), id)
  end
end

-- Ready means: status available, below capacity, a live heartbeat with a registered device.
local function eligible(id, a)
  return a.status == 'available'
    and num(a.active, 0) < num(a.capacity, 1)
    and redis.call('GET', k_alive(id)) == '1'
end

-- Put the agent in (or take it out of) its ready sets to match its state. Returns true when
-- the agent was not ready before and is now (the caller then wakes a worker).
local function refresh_ready(id, a)
  local qs = agent_queues(a.queues)
  if not eligible(id, a) then
    remove_ready(id, a)
    return false
  end
  local added = false
  for _, qt in ipairs(qs) do
    local cfg = queue_cfg(qt[1])
    if cfg then
      local n = redis.call('ZADD', k_ready(qt[1], qt[2]), ready_score(qt[1], cfg, a), id)
      if n == 1 then added = true end
    end
  end
  return added
end

-- Set fields on the agent hash and mirror them in the Lua table `a`.
local function agent_set(id, a, fields)
  local flat = {}
  for k, v in pairs(fields) do
    a[k] = tostring(v)
    flat[#flat + 1] = k
    flat[#flat + 1] = tostring(v)
  end
  redis.call('HSET', k_agent(id), unpack(flat))
end

-- Move the agent to `status` (not on a call) and fix its ready sets, wrap-up entry and wake.
-- hold_ms > 0 with status 'wrapup' puts it in the wrap-up set until NOW + hold_ms.
local function agent_settle(id, a, status, hold_ms, reason)
  local fields = { status = status, reason = reason or '' }
  if status == 'wrapup' then
    redis.call('ZADD', K_WRAPUP, NOW + hold_ms, id)
    -- a worker's next claim learns when this wrap-up ends (next_due) and wakes then
    wake()
  else
    redis.call('ZREM', K_WRAPUP, id)
  end
  if status == 'available' and a.status ~= 'available' and num(a.active, 0) == 0 then
    fields.idle_ms = NOW
  end
  agent_set(id, a, fields)
  if refresh_ready(id, a) then wake() end
  event('agent', { 'agent', id, 'status', status, 'reason', reason or '' })
end

-- An agent let go of one call (ended, not answered, or abandoned). `hold_ms` is the wrap-up
-- or no-answer delay to serve before the next offer. A deferred status request (paused or
-- offline asked for while on a call) is applied once the agent holds no call.
local function agent_release(id, a, hold_ms)
  local active = math.max(num(a.active, 0) - 1, 0)
  agent_set(id, a, { active = active })
  if a.status == 'paused' or a.status == 'offline' then
    remove_ready(id, a)
    return
  end
  if a.pending ~= nil and a.pending ~= '' then
    if active > 0 then
      remove_ready(id, a)
      return
    end
    local pending, reason = a.pending, a.pending_reason
    agent_set(id, a, { pending = '', pending_reason = '' })
    agent_settle(id, a, pending, 0, reason)
    return
  end
  if active == 0 and hold_ms > 0 then
    agent_settle(id, a, 'wrapup', hold_ms, '')
  elseif active == 0 then
    agent_settle(id, a, 'available', 0, '')
  else
    -- still holding other calls, now below capacity: offerable again
    agent_set(id, a, { status = 'available' })
    if refresh_ready(id, a) then wake() end
  end
end

-- The heartbeat is gone: the agent is offline until its next heartbeat brings it back.
local function agent_lost(id, a)
  if a.status == 'offline' then return end
  if num(a.active, 0) > 0 then
    agent_set(id, a, { pending = 'offline', pending_reason = 'heartbeat' })
    remove_ready(id, a)
    return
  end
  agent_settle(id, a, 'offline', 0, 'heartbeat')
end

-- Wrap-up and no-answer delays whose time has come: the agents are available again.
local function promote_wrapups()
  local due = redis.call('ZRANGEBYSCORE', K_WRAPUP, '-inf', NOW, 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    local a = hgetall(k_agent(id))
    redis.call('ZREM', K_WRAPUP, id)
    if a and a.status == 'wrapup' then
      agent_settle(id, a, 'available', 0, '')
    end
  end
  return #due
end

-- A call goes back in line at its original rank (no answer, lease expired, ...).
local function call_requeue(sid, c)
  local state = 'waiting'
  if c.kind == 'callback' then state = 'callback' end
  redis.call('HSET', k_call(sid), 'state', state, 'agent', '')
  redis.call('ZADD', k_waiting(c.queue), c.rank, sid)
  wake()
end

local RETENTION_MS = 86400000
-- A call reached a final state: keep its hash a day for history, then let Redis drop it.
local function call_finish(sid, state)
  redis.call('HSET', k_call(sid), 'state', state, 'ended_ms', NOW)
  redis.call('PEXPIRE', k_call(sid), RETENTION_MS)
end
