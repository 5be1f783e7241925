-- set_rollout: an admin overrides (or, with '', clears) the share of callers callq routes,
-- for every server of the centre at once; the file's `[rollout] share_pct` applies when none
-- is set. Calls already in the line are not touched.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  share in percent, '0' to '100', or '' to go back to the configured share
-- ARGV[2]  who asked (for the record)
-- Returns  {'ok', previous} (previous: the override before, '' when none)
-- @include events.lua

local before = redis.call('HGET', K_SWITCHES, 'share_pct') or ''
if ARGV[1] == '' then
  redis.call('HDEL', K_SWITCHES, 'share_pct')
else
  redis.call('HSET', K_SWITCHES, 'share_pct', ARGV[1])
end
event('rollout', { 'share_pct', ARGV[1], 'was', before, 'by', ARGV[2] })
return { 'ok', before }
