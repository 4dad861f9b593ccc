-- N ≥ 1 successes of one deployment at once, leaving the state N consecutive single successes would (each: the
-- window's request count, the EWMAs, consecutive failures reset, a half-open circuit closed).
-- KEYS[1]: the deployment's hash. ARGV: latency|'', ttft|'' per success (in order), then health_record.lua's
-- tail: alpha, cooldown, failure_threshold, error_rate_threshold, min_requests, bucket_seconds, buckets, ttl.
-- Returns the stored state.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local c = #ARGV - 8  -- ARGV[c + i] is the i-th value of the config tail
local n = c / 2
local alpha = tonumber(ARGV[c + 1])
local cur = math.floor(now / tonumber(ARGV[c + 6]))
local low = cur - tonumber(ARGV[c + 7]) + 1
local raw = redis.call('HGETALL', key)
local f = {}
local stale = {}
for i = 1, #raw, 2 do
  local k = raw[i]
  local p = string.sub(k, 1, 2)
  if p == 'r:' or p == 'e:' then
    if tonumber(string.sub(k, 3)) < low then stale[#stale + 1] = k end
  else
    f[k] = raw[i + 1]
  end
end
if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
local stored = tonumber(f['st']) or 0
local st = stored
if st == 1 and now >= (tonumber(f['oa']) or 0) + tonumber(ARGV[c + 2]) then st = 2 end
-- One call takes 1 off while it is above 0: n calls take min(inf, n).
local inf = tonumber(f['inf']) or 0
if inf > 0 then redis.call('HINCRBY', key, 'inf', -math.min(inf, n)) end
redis.call('HINCRBY', key, 'r:' .. tostring(cur), n)
-- The averages stay in Lua numbers between samples: the single script's HSET/HGETALL round trip of a number
-- keeps every bit (17 significant digits), so both orders give the same values.
local avg = {lat = tonumber(f['lat']), ttft = tonumber(f['ttft'])}
local measured = {}
local function ewma(name, sample)
  if not sample then return end
  local old = avg[name]
  avg[name] = old == nil and sample or alpha * sample + (1 - alpha) * old
  measured[name] = true
end
for i = 1, c, 2 do
  ewma('lat', tonumber(ARGV[i]))
  ewma('ttft', tonumber(ARGV[i + 1]))
end
for name in pairs(measured) do redis.call('HSET', key, name, avg[name]) end
redis.call('HSET', key, 'cf', 0)
redis.call('HDEL', key, 'rl')
-- The first success closes a half-open circuit; the others find it closed.
if st == 2 then
  stored = 0
  redis.call('HSET', key, 'st', 0, 'pi', 0)
  redis.call('HDEL', key, 'oa', 'pa')
end
redis.call('EXPIRE', key, ARGV[c + 8])
return stored
