-- Settle (at the actual cost) or release a request's reservation on all of its budgets (see budget_store.py).
-- KEYS: state, then per budget: counter hash, reservation zset. ARGV: actual ('' = release; any integer,
-- zero and negative refunds included), request id, state ttl ms, n.
-- Returns {'dup'} when the request was settled or released before, else {'ok', then before, after of each
-- budget ('' when its counter is missing: the ledger will carry the spend into the rebuild)}.

-- Take `a` (a decimal string Redis was given) off a field. Never '-0' or '--5': HINCRBY refuses both.
local function take(h, field, a)
  if a == '0' or a == '-0' then return end
  if string.sub(a, 1, 1) == '-' then
    redis.call('HINCRBY', h, field, string.sub(a, 2))
  else
    redis.call('HINCRBY', h, field, '-' .. a)
  end
end

local st = redis.call('GET', KEYS[1])
if st == 's' or st == 'x' then return {'dup'} end
local actual = ARGV[1]
local rid = ARGV[2]
local n = tonumber(ARGV[4])
local out = {'ok'}
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  local a = redis.call('HGET', h, 'r:' .. rid)
  if a then
    take(h, 'reserved', a)
    redis.call('HDEL', h, 'r:' .. rid)
  end
  redis.call('ZREM', z, rid)
  if actual ~= '' and redis.call('HEXISTS', h, 'used') == 1 then
    local before = redis.call('HGET', h, 'used')
    if actual ~= '0' then redis.call('HINCRBY', h, 'used', actual) end
    out[#out + 1] = before
    out[#out + 1] = redis.call('HGET', h, 'used')
  else
    out[#out + 1] = ''
    out[#out + 1] = ''
  end
end
if actual == '' then
  redis.call('SET', KEYS[1], 'x', 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], 's', 'PX', ARGV[3])
end
return out
