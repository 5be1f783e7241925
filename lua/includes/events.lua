-- events.lua: telling the world. `wake` pushes a capped marker for the workers; `event`
-- appends a transition to the capped audit stream.
-- @include keys.lua

local WAKE_CAP = 16
local EVENTS_MAXLEN = 100000

-- Wake one waiting worker; the list is capped so a burst leaves a bounded backlog.
local function wake()
  redis.call('LPUSH', K_WAKE, NOW)
  redis.call('LTRIM', K_WAKE, 0, WAKE_CAP - 1)
end

-- Append a transition to the audit stream. `fields` is a flat list of name, value pairs.
local function event(kind, fields)
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', kind, unpack(fields))
end
