-- One failed outcome of a request to a deployment (successes, one or many: health_record_many.lua).
-- KEYS[1]: the deployment's hash. ARGV: kind ('f' failure | 'r' rate limited), latency|'', ttft (unused),
-- retry_after, alpha, cooldown, failure_threshold, error_rate_threshold, min_requests, bucket_seconds, buckets, ttl.
-- Returns the stored state.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local kind = ARGV[1]
local lat_sample = tonumber(ARGV[2])
local alpha = tonumber(ARGV[5])
local cur = math.floor(now / tonumber(ARGV[10]))
local low = cur - tonumber(ARGV[11]) + 1
local raw = redis.call('HGETALL', key)
local f = {}
local req, err = 0, 0
local stale = {}
for i = 1, #raw, 2 do
  local k = raw[i]
  local p = string.sub(k, 1, 2)
  if p == 'r:' or p == 'e:' then
    if tonumber(string.sub(k, 3)) < low then
      stale[#stale + 1] = k
    elseif p == 'r:' then
      req = req + tonumber(raw[i + 1])
    else
      err = err + tonumber(raw[i + 1])
    end
  else
    f[k] = raw[i + 1]
  end
end
if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
local stored = tonumber(f['st']) or 0
local st = stored
if st == 1 and now >= (tonumber(f['oa']) or 0) + tonumber(ARGV[6]) then st = 2 end
if (tonumber(f['inf']) or 0) > 0 then redis.call('HINCRBY', key, 'inf', -1) end
local bucket = tostring(cur)
redis.call('HINCRBY', key, 'r:' .. bucket, 1)
req = req + 1
local function ewma(old, sample)
  if old == nil then return sample end
  return alpha * sample + (1 - alpha) * old
end
if lat_sample then redis.call('HSET', key, 'lat', ewma(tonumber(f['lat']), lat_sample)) end
if kind == 'r' then
  redis.call('HSET', key, 'rl', now + tonumber(ARGV[4]))
  if stored == 2 and (tonumber(f['pi']) or 0) > 0 then redis.call('HINCRBY', key, 'pi', -1) end
else
  redis.call('HINCRBY', key, 'e:' .. bucket, 1)
  err = err + 1
  local cf = redis.call('HINCRBY', key, 'cf', 1)
  if st == 2 or (st == 0 and (cf >= tonumber(ARGV[7]) or
      (req >= tonumber(ARGV[9]) and err / req >= tonumber(ARGV[8])))) then
    stored = 1
    redis.call('HSET', key, 'st', 1, 'oa', now, 'pi', 0)
  end
end
redis.call('EXPIRE', key, ARGV[12])
return stored
