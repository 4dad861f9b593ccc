-- Settle a request: correct its token charge and free its concurrency slot.
-- KEYS: one per check to correct. ARGV: lease, then per check 3 values: 'g', interval µs, token delta (positive
-- charges more, negative refunds; the bucket never goes above full) or 'c', '', '' (free the lease's slot).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local j = 2 + (i - 1) * 3
  if ARGV[j] == 'g' then
    local delta = tonumber(ARGV[j + 2]) * tonumber(ARGV[j + 1])
    local tat = tonumber(redis.call('GET', KEYS[i]))
    if tat == nil then tat = now end
    if delta > 0 and tat < now then tat = now end
    local ntat = tat + delta
    if ntat > now then
      redis.call('SET', KEYS[i], string.format('%.3f', ntat), 'PX', math.ceil((ntat - now) / 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return 0
