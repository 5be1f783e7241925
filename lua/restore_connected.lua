-- restore_connected: after Redis lost a centre's data, put back a call Twilio still has in
-- progress and the archive says an agent answered (`callq reconcile`). The call is connected
-- to that agent again, with its check scheduled as after an answer, so its end (the <Dial>
-- result, the caller's status callback, or a check with Twilio) completes it as usual and the
-- agent is not offered another call meanwhile. Nothing changes when Redis knows the call, or
-- does not know the agent or the queue, or the agent already holds as many calls as it may.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  CallSid
-- ARGV[2]  queue
-- ARGV[3]  agent id (who answered)
-- ARGV[4]  attempt (the answered offer's number)
-- ARGV[5]  From
-- ARGV[6]  To
-- ARGV[7]  kind: 'inbound' | 'callback'
-- ARGV[8]  ms since the call entered the line
-- ARGV[9]  ms since the agent answered
-- Returns  {'restored'} | {'known', state} | {'unknown_agent'} | {'unknown_queue'}
--          | {'agent_full'}
-- @include calls.lua

local sid, q, id, attempt = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local state = redis.call('HGET', k_call(sid), 'state')
if state then return { 'known', state } end
local cfg = queue_cfg(q)
if cfg == nil then return { 'unknown_queue' } end
local a = hgetall(k_agent(id))
if a == nil then return { 'unknown_agent' } end
local active = num(a.active, 0) + 1
if active > num(a.capacity, 1) then return { 'agent_full' } end

local entered = NOW - math.max(num(ARGV[8], 0), 0)
local answered = NOW - math.max(num(ARGV[9], 0), 0)
redis.call('HSET', k_call(sid),
  'sid', sid, 'queue', q, 'from', ARGV[5], 'to', ARGV[6], 'priority', '0',
  'rank', int(entered), 'kind', ARGV[7], 'state', 'connected', 'agent', id,
  'attempts', int(num(attempt, 1)), 'rang', ',' .. id .. ',', 'entered_ms', int(entered),
  'offered_ms', int(answered), 'answered_ms', int(answered), 'phase', '', 'checks', '0',
  'leg_sid', '', 'skills', '', 'resumed', '0', 'group', '', 'ringing', '', 'restored', '1')
redis.call('ZADD', K_CONNECTED, int(NOW + setting(cfg, 'check_after_ms', 300000)), sid)

-- the agent holds the call: never offered another beyond its capacity
local fields = { active = active }
if active >= num(a.capacity, 1) then fields.status = 'busy' end
agent_set(id, a, fields)
if a.status == 'busy' then remove_ready(id, a) else refresh_ready(id, a) end
event('restored', { 'call', sid, 'agent', id, 'queue', q, 'attempt', attempt,
  'state', 'connected' })
return { 'restored' }
