-- configure_queue: create or update a queue's routing settings (from the centre's config file).
-- The queue's running figures live apart, in `queue:<q>:stats`; a queue hash written before
-- they did still holds them, and they are moved there (kept where both have a figure: the
-- stats hash's is the newer).
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  queue name
-- ARGV[2]  strategy: longest_idle | fewest_calls | least_talk_time | round_robin | random |
--          linear | weighted_random
-- ARGV[3]  ring timeout, ms (how long an agent's phone rings)
-- ARGV[4]  wrap-up, ms (after-call work before the next offer)
-- ARGV[5]  max no-answer in a row before the agent is paused
-- ARGV[6]  no-answer delay, ms (rest after a missed offer)
-- ARGV[7]  callback retries: how many more times a callback whose customer did not answer
--          is tried before it ends as callback_failed
-- ARGV[8]  callback retry delay, ms
-- ARGV[9]  check after, ms: how long a connected call may go without word before the
--          worker asks Twilio whether it still goes on (and again as often)
-- ARGV[10] fallback: '1' an unanswered offer goes on to the next agent, '0' it ends the
--          call's time in line (`[features] fallback`; `feature:fallback` in the switches
--          hash, set by an admin, wins over it)
-- ARGV[11] half-life, ms, of the recent work fewest_calls and least_talk_time compare
-- ARGV[12] recording of the agent's leg: a `<Dial record>` value (`do-not-record`, …)
-- ARGV[13] skills every call of the queue requires, with minimum levels, "billing=3" ('' none;
--          a call given its own skills by the IVR or a priority rule requires those instead)
-- ARGV[14] widening steps, by a call's wait: "after_ms:name=value,...;..." with the names
--          level (every required skill accepted from this level), tiers (agents of tiers
--          up to this one), skills=any (no skill required), queue (also that queue's ready
--          agents), e.g. "30000:level=2;60000:tiers=2;120000:skills=any,queue=support"
-- ARGV[15] how many calls from the head of the line a claim looks at: 1 when every call of
--          the queue can take the same agents, more when skills or widening set them apart
-- ARGV[16] busy delay, ms (rest after an offer the device answered busy: declined, or busy)
-- ARGV[17] failed delay, ms (rest after an offer Twilio could not ring through)
-- ARGV[18] resume window, ms: a caller who hangs up while in line and calls the queue again
--          from the same number within it goes back in at the rank they had ('0': off)
-- ARGV[19] rank of a call an agent transfers into the queue: 'keep' (the rank it had) | 'new'
-- Returns  {'created' | 'updated'}
-- @include keys.lua

local q = ARGV[1]
local existed = redis.call('SISMEMBER', K_QUEUES, q) == 1
if existed then
  local names = { 'aht_ms', 'ring_ms', 'left_n', 'abandon_n', 'held_s', 'rr_seq' }
  local old = redis.call('HMGET', k_queue(q), unpack(names))
  for i, name in ipairs(names) do
    if old[i] then
      redis.call('HSETNX', k_queue_stats(q), name, old[i])
      redis.call('HDEL', k_queue(q), name)
    end
  end
end
redis.call('HSET', k_queue(q),
  'strategy', ARGV[2], 'ring_timeout_ms', ARGV[3], 'wrapup_ms', ARGV[4],
  'max_no_answer', ARGV[5], 'no_answer_delay_ms', ARGV[6], 'callback_retries', ARGV[7],
  'callback_retry_delay_ms', ARGV[8], 'check_after_ms', ARGV[9], 'fallback', ARGV[10],
  'half_life_ms', ARGV[11], 'record', ARGV[12], 'skills', ARGV[13] or '',
  'widen', ARGV[14] or '', 'depth', ARGV[15] or '1', 'busy_delay_ms', ARGV[16] or ARGV[6],
  'failed_delay_ms', ARGV[17] or ARGV[6], 'resume_ms', ARGV[18] or '0',
  'transfer_rank', ARGV[19] or 'keep')
redis.call('HSETNX', k_queue(q), 'tiers', '1')
redis.call('SADD', K_QUEUES, q)
config_changed()
if existed then return { 'updated' } end
return { 'created' }
