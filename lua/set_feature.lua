-- set_feature: an admin turns one of the centre's features on or off for every server and
-- worker at once, or (with '') goes back to the configuration file's setting. Stored as
-- `feature:<name>` in the switches hash; scripts that act on a feature read it there.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  feature name (callbacks | priority | device_check | fallback; checked by the caller)
-- ARGV[2]  '1' on, '0' off, or '' to clear the override
-- ARGV[3]  who asked (for the record)
-- Returns  {'ok', previous} (previous: the override before, '' when none)
-- @include events.lua

local field = 'feature:' .. ARGV[1]
local before = redis.call('HGET', K_SWITCHES, field) or ''
if ARGV[2] == '' then
  redis.call('HDEL', K_SWITCHES, field)
else
  redis.call('HSET', K_SWITCHES, field, ARGV[2])
end
event('feature', { 'feature', ARGV[1], 'enabled', ARGV[2], 'was', before, 'by', ARGV[3] })
return { 'ok', before }
