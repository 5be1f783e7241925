-- record: Twilio finished recording a call's agent leg. The recording's SID, URL and length go
-- on the call's hash (kept as long as the call's record), and an event names the recording by
-- its SID only: the URL is the caller's voice and stays out of the audit stream. The same
-- recording reported again changes nothing; a later recording of the same call takes its
-- place (the event names the one replaced); a call callq has no record of gets nothing.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  RecordingSid
-- ARGV[3]  RecordingUrl
-- ARGV[4]  recording length, whole seconds
-- Returns  {'recorded'} | {'duplicate'} | {'unknown'}
-- @include events.lua

local sid, rec, url, secs = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', k_call(sid)) == 0 then return { 'unknown' } end
local before = redis.call('HGET', k_call(sid), 'recording_sid')
if before == rec then return { 'duplicate' } end
-- HSET keeps the hash's expiry: a finished call's record lasts as long as it did
redis.call('HSET', k_call(sid), 'recording_sid', rec, 'recording_url', url,
  'recording_duration_s', secs)
local fields = { 'call', sid, 'recording_sid', rec, 'duration_s', secs }
if before then
  fields[#fields + 1] = 'replaced'
  fields[#fields + 1] = before
end
event('recorded', fields)
return { 'recorded' }
