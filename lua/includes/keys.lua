-- keys.lua: the centre's key names, the script's clock, and the small helpers every script
-- uses. Every routing key derives from KEYS[1], the centre's prefix `callq:{C}:`, so all keys
-- a script touches share the `{C}` hash slot.
--
-- Key names (P = KEYS[1]):
--   P..'call:'..sid              hash  the call
--   P..'call:'..sid..':history'  list  the call's transitions, JSON [stream id, kind, [name,
--                                value, ...]], oldest first (capped, kept a day after the
--                                call ends)
--   P..'queue:'..q               hash  the queue's routing settings (configure_queue)
--   P..'queue:'..q..':stats'     hash  the queue's running figures, kept by the transitions:
--                                aht_ms, ring_ms, left_n, abandon_n, held_s (the estimated
--                                wait's inputs), rr_seq (round_robin's counter)
--   P..'queue:'..q..':waiting'   zset  calls in line (waiting, or callback due), score = rank
--   P..'queue:'..q..':ready:'..t zset  agents ready for q at tier t, score by strategy
--   P..'queue:'..q..':ready:'..t..':skill:'..s..':'..l
--                                zset  the same agents that have skill s at level l (1-5)
--   P..'queue:'..q..':resume:'..from  string with PX TTL: the rank a caller from that number
--                                had when they hung up (caller resume, per queue)
--   P..'queue:'..q..':agents'    hash  how many of q's agents are in each state (field =
--                                status; 'available' without a live registered device
--                                counts as 'offline'), kept by agent_set in agents.lua
--   P..'agent:'..a               hash  the agent
--   P..'agent:'..a..':alive'     string with PX TTL: '1' device registered, '0' not
--   P..'queues' set, P..'agents' set, P..'skills' set (every skill an agent was given)
--   P..'arriving'   zset  calls Twilio has not yet put on hold, score = when to stop waiting
--   P..'offers'     zset  offered calls, score = lease deadline (then Twilio is asked)
--   P..'connected'  zset  connected calls, score = when to confirm with Twilio they still talk
--   P..'retry'      zset  callbacks waiting out a retry delay, score = when due again
--   P..'wrapup'     zset  agents in wrap-up or no-answer delay, score = ready-at
--   P..'heartbeats' zset  agents by heartbeat deadline
--   P..'wake' list (capped), P..'events' stream (capped)
--   P..'switches'   hash  run-time overrides of the config (share_pct: rollout share;
--                         feature:<name>: '1' or '0', see set_feature.lua)
--   P..'config_gen' string  changes whenever a queue's routing settings do (config_changed)

-- The centre's prefix, the script's clock and the fixed keys: set for each call by `begin`
-- (the scripts are also loaded once as a library of Redis functions, whose shared code runs
-- once at load, so nothing here may depend on the call at load time). NOW_S is NOW as
-- digits: a Lua number given to redis.call is formatted with "%.17g" on every use, several
-- times dearer than passing a string (a ZADD with a number score costs Redis nearly twice
-- one with the digits), so arguments go as strings (`int`, `str`, constants written as
-- strings); a test of src/store/scripts.rs refuses a number literal in a redis.call.
local P, NOW, NOW_S, NOW_US, RUN = nil, nil, nil, nil, 0
local K_QUEUES, K_AGENTS, K_ARRIVING, K_OFFERS, K_CONNECTED, K_RETRY, K_WRAPUP
local K_HEARTBEATS, K_WAKE, K_EVENTS, K_SWITCHES, K_SKILLS, K_CONFIG_GEN

-- Redis' clock: unix ms as digits and as a number, and the exact reading as a string
-- (seconds.microseconds). The digits are cut from TIME's reply: each string turned into a
-- number costs a strtod (tonumber two), the dearest small thing a script does.
local function now_ms()
  local t = redis.call('TIME')
  local ms = t[1] .. string.sub('00000' .. t[2], -6, -4)
  return ms, ms + 0, t[1] .. '.' .. t[2]
end

-- Set by a claim for the rest of its call, cleared by begin: see wake (events.lua).
local WAKE_QUIET = false

-- Every transition opens with begin(KEYS): the centre, the time, the keys; RUN numbers the
-- call, for what a script reads once per call (see agents.lua). Loaded as functions, the
-- keys stay built from one call to the next of the same centre.
local function begin(keys)
  NOW_S, NOW, NOW_US = now_ms()
  RUN = RUN + 1
  WAKE_QUIET = false
  if keys[1] == P then return end
  P = keys[1]
  K_QUEUES = P .. 'queues'
  K_AGENTS = P .. 'agents'
  K_ARRIVING = P .. 'arriving'
  K_OFFERS = P .. 'offers'
  K_CONNECTED = P .. 'connected'
  K_RETRY = P .. 'retry'
  K_WRAPUP = P .. 'wrapup'
  K_HEARTBEATS = P .. 'heartbeats'
  K_WAKE = P .. 'wake'
  K_EVENTS = P .. 'events'
  K_SWITCHES = P .. 'switches'
  K_SKILLS = P .. 'skills'
  K_CONFIG_GEN = P .. 'config_gen'
end

-- The call (RUN) that last checked the configuration generation; see queue_cfg (agents.lua).
local CFG_RUN = nil

-- A script changed a queue's routing settings: a new generation (the clock to the
-- microsecond, never seen before, even after the key was lost), so every cached copy of the
-- settings is read afresh, in this call too.
local function config_changed()
  redis.call('SET', K_CONFIG_GEN, NOW_US)
  CFG_RUN = nil
end

local function k_call(sid) return P .. 'call:' .. sid end
local function k_call_history(sid) return P .. 'call:' .. sid .. ':history' end
local function k_queue(q) return P .. 'queue:' .. q end
local function k_waiting(q) return P .. 'queue:' .. q .. ':waiting' end
local function k_ready(q, tier) return P .. 'queue:' .. q .. ':ready:' .. tier end
local function k_ready_skill(q, tier, skill, level)
  return P .. 'queue:' .. q .. ':ready:' .. tier .. ':skill:' .. skill .. ':' .. level
end
local function k_resume(q, from) return P .. 'queue:' .. q .. ':resume:' .. from end
local function k_queue_agents(q) return P .. 'queue:' .. q .. ':agents' end
local function k_queue_stats(q) return P .. 'queue:' .. q .. ':stats' end
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

-- Integers as plain digits: tostring() of a large Lua number gives exponent notation.
local function int(v)
  return string.format('%d', v)
end

-- A value as the string Redis stores: whole numbers as plain digits, other numbers as
-- tostring() gives them (14 significant digits), strings as they are.
local function str(v)
  local t = type(v)
  if t == 'string' then return v end
  if t == 'number' then
    if v == math.floor(v) and v > -9e15 and v < 9e15 then return string.format('%d', v) end
  end
  return tostring(v)
end
