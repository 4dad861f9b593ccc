-- May this deployment take a request now? KEYS[1]: the deployment's hash.
-- ARGV: cooldown, probes, probe_timeout, ttl. Returns 1 (granted) or 0.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = redis.call('HMGET', key, 'st', 'oa', 'pi', 'pa', 'rl')
local rl = tonumber(h[5])
if rl and now < rl then return 0 end
local st = tonumber(h[1]) or 0
if st == 0 then
  redis.call('HINCRBY', key, 'inf', 1)
  redis.call('EXPIRE', key, ARGV[4])
  return 1
end
local probes = tonumber(ARGV[2])
local pi = tonumber(h[3]) or 0
if st == 1 then
  if now < (tonumber(h[2]) or 0) + tonumber(ARGV[1]) then return 0 end
  pi = 0
elseif pi >= probes and now - (tonumber(h[4]) or 0) >= tonumber(ARGV[3]) then
  pi = 0
end
if pi >= probes then return 0 end
redis.call('HSET', key, 'st', 2, 'pi', pi + 1, 'pa', now)
redis.call('HINCRBY', key, 'inf', 1)
redis.call('EXPIRE', key, ARGV[4])
return 1
