-- Create a budget's counter for a period from the ledger's figure, unless it exists (concurrent rebuilders
-- agree: the first wins). KEYS: counter hash. ARGV: used, expire-at (0 = never).
-- Returns 1 when created, 0 when it existed.
if redis.call('HSETNX', KEYS[1], 'used', ARGV[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'reserved', '0')
if ARGV[2] ~= '0' then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end
return 1
