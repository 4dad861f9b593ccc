-- Check and book a request's reservation against all of its budgets at once (see budget_store.py).
-- KEYS: state, then per budget: counter hash, reservation zset.
-- ARGV: amount, request id, ttl ms, state ttl ms, n, then per budget: limit, action (b|d|n), threshold (basis
-- points of percent), expire-at (unix seconds, 0 = never).
-- Returns {'missing', i...} | {'refused', i, used, reserved} | {'ok', downgrade flags..., then used, reserved
-- of each budget}.

-- Redis' clock in milliseconds: 13 digits, which Lua's number-to-string conversion keeps exact.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Take `a` (a decimal string Redis was given) off a field. Never '-0' or '--5': HINCRBY refuses both.
local function take(h, field, a)
  if a == '0' or a == '-0' then return end
  if string.sub(a, 1, 1) == '-' then
    redis.call('HINCRBY', h, field, string.sub(a, 2))
  else
    redis.call('HINCRBY', h, field, '-' .. a)
  end
end

-- Drop reservations of counter (h, z) that expired at or before `now`.
local function sweep(h, z)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, rid in ipairs(gone) do
    local a = redis.call('HGET', h, 'r:' .. rid)
    if a then
      take(h, 'reserved', a)
      redis.call('HDEL', h, 'r:' .. rid)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end

local amount = ARGV[1]
local rid = ARGV[2]
local n = tonumber(ARGV[5])
local missing = {}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2 * i], 'used') == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then
  table.insert(missing, 1, 'missing')
  return missing
end
local again = redis.call('GET', KEYS[1])
local used, reserved = {}, {}
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  sweep(h, z)
  local f = redis.call('HMGET', h, 'used', 'reserved')
  used[i] = f[1]
  reserved[i] = f[2] or '0'
end
if again then
  -- A retried reserve of the same request (its reply was lost): book nothing twice.
  local out = {'ok'}
  for i = 1, n do out[#out + 1] = 0 end
  for i = 1, n do out[#out + 1] = used[i]; out[#out + 1] = reserved[i] end
  return out
end
local a = tonumber(amount)
local flags = {}
for i = 1, n do
  local base = 5 + (i - 1) * 4
  local limit = tonumber(ARGV[base + 1])
  local action = ARGV[base + 2]
  local u, r = tonumber(used[i]), tonumber(reserved[i])
  if action == 'b' and u + r + a > limit then
    return {'refused', i, used[i], reserved[i]}
  end
  flags[i] = 0
  if action == 'd' and (u + r) * 10000 >= tonumber(ARGV[base + 3]) * limit then flags[i] = 1 end
end
local expiry = now + tonumber(ARGV[3])
local out = {'ok'}
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  local base = 5 + (i - 1) * 4
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'r:' .. rid, amount)
  redis.call('ZADD', z, expiry, rid)
  if ARGV[base + 4] ~= '0' then
    redis.call('EXPIREAT', h, ARGV[base + 4])
    redis.call('EXPIREAT', z, ARGV[base + 4])
  end
  out[#out + 1] = flags[i]
end
for i = 1, n do
  local f = redis.call('HMGET', KEYS[2 * i], 'used', 'reserved')
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
end
redis.call('SET', KEYS[1], 'r', 'PX', ARGV[4])
return out
