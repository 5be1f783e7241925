-- events.lua: telling the world. `wake` pushes a capped marker for the workers; `event`
-- appends a transition to the capped audit stream (and to the call's own history).
-- @include keys.lua

-- (Caps given to redis.call go as strings, formatted once at load: see keys.lua.)
local WAKE_CAP = 16
local WAKE_LAST = (WAKE_CAP - 1) .. ''
local EVENTS_MAXLEN = '100000'

-- Wake one waiting worker; the list is capped so a burst leaves a bounded backlog. The
-- marker is when the work falls due (Redis' clock, unix ms): now, or `at` (a wrap-up's end),
-- in which case the worker that takes it only sets its timer and claims then. A claim wakes
-- nobody (WAKE_QUIET): what its own promotions free up it offers in the same step, and a
-- worker whose claim stopped at its batch claims again at once. A marker lost to the cap
-- costs little: idle claims still report the next wrap-up end, and the reaper promotes it
-- within its interval.
local function wake(at)
  if WAKE_QUIET then return end
  if redis.call('LPUSH', K_WAKE, at or NOW_S) > WAKE_CAP then
    redis.call('LTRIM', K_WAKE, '0', WAKE_LAST)
  end
end

-- A call's own history (`call:<sid>:history`) keeps its latest transitions this many ...
local HISTORY_CAP = 200
local HISTORY_FROM = (-HISTORY_CAP) .. ''
-- ... for as long as a finished call's hash is kept: a day from its first entry and again
-- from the call's end (call_finish), whichever is later.
local RETENTION_MS = '86400000'

-- Append a transition to the audit stream. `fields` is a flat list of name, value pairs
-- (the caller's own, made for this event: its numbers are turned into strings in place);
-- a transition of a call (fields open with 'call', sid) also goes to that call's history, a
-- list of JSON entries [stream id, kind, [name, value, ...]], so a call's story is read
-- without scanning the stream.
local function event(kind, fields)
  -- numbers as Redis stores them (integers as plain digits), the same in stream and history
  local flat = fields
  for i = 1, #fields do
    local v = fields[i]
    if v == nil then
      -- (a nil ends the list, as it always did: what follows it is left out)
      flat = { unpack(fields, 1, i - 1) }
      break
    end
    if type(v) ~= 'string' then fields[i] = str(v) end
  end
  local id = redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', kind,
    unpack(flat))
  if flat[1] ~= 'call' or flat[2] == nil or flat[2] == '' then return end
  local key = k_call_history(flat[2])
  local len = redis.call('RPUSH', key, cjson.encode({ id, kind, flat }))
  if len == 1 then
    redis.call('PEXPIRE', key, RETENTION_MS)
  elseif len > HISTORY_CAP then
    redis.call('LTRIM', key, HISTORY_FROM, '-1')
  end
end
