-- Admit one request: take from every bucket, or from none if any refuses (GCRA on Redis' clock).
-- KEYS: one per check. ARGV: lease, lease µs, then per check 4 values: 'g', interval µs, window µs, cost
-- (requests/tokens) or 'c', limit, '', '' (concurrency). Returns {ok, now µs, fits1, state1, fits2, state2, …}
-- where state is the TAT before taking (GCRA) or the live slot count (concurrency).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slack = 1.0
local out = {1, now}
local ok = 1
local tats = {}
for i = 1, #KEYS do
  local j = 3 + (i - 1) * 4
  local fits
  if ARGV[j] == 'g' then
    local tat = tonumber(redis.call('GET', KEYS[i])) or now
    if tat < now then tat = now end
    tats[i] = tat
    fits = tat + tonumber(ARGV[j + 3]) * tonumber(ARGV[j + 1]) - now <= tonumber(ARGV[j + 2]) + slack
    out[#out + 1] = fits and 1 or 0
    out[#out + 1] = math.floor(tat)
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local count = redis.call('ZCARD', KEYS[i])
    fits = count < tonumber(ARGV[j + 1])
    out[#out + 1] = fits and 1 or 0
    out[#out + 1] = count
  end
  if not fits then ok = 0 end
end
if ok == 0 then
  out[1] = 0
  return out
end
local lease_us = tonumber(ARGV[2])
for i = 1, #KEYS do
  local j = 3 + (i - 1) * 4
  if ARGV[j] == 'g' then
    local ntat = tats[i] + tonumber(ARGV[j + 3]) * tonumber(ARGV[j + 1])
    if ntat > now then
      redis.call('SET', KEYS[i], string.format('%.3f', ntat), 'PX', math.ceil((ntat - now) / 1000) + 1000)
    end
  else
    redis.call('ZADD', KEYS[i], now + lease_us, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(lease_us / 1000) + 1000)
  end
end
return out
