-- revoke_tokens: void every agent token issued so far for one agent by giving the agent a new
-- token generation. Tokens carry the generation they were issued under; the agent API refuses
-- any whose generation is no longer the agent's. Nothing else about the agent changes: a call
-- it holds, its status and its presence stay as they are.
--
-- KEYS[1]  centre prefix `callq:{C}:`
-- ARGV[1]  agent id
-- ARGV[2]  the new token generation (letters and digits)
-- Returns  {'ok'} | {'unknown'}
-- @include agents.lua

local id = ARGV[1]
if redis.call('EXISTS', k_agent(id)) == 0 then return { 'unknown' } end
redis.call('HSET', k_agent(id), 'token_gen', ARGV[2])
-- the generation goes on record (it is no credential: tokens are signed by the agent secret),
-- so `callq reconcile` can bring an agent back with the tokens it holds still good
event('agent', { 'agent', id, 'status', redis.call('HGET', k_agent(id), 'status') or '',
  'reason', 'tokens revoked', 'token_gen', ARGV[2] })
return { 'ok' }
