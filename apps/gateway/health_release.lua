-- A request ended with no outcome (the client went away): free its in-flight count and probe slot.
-- KEYS[1]: the deployment's hash. Never creates the key.
local key = KEYS[1]
local h = redis.call('HMGET', key, 'st', 'pi', 'inf')
if (tonumber(h[3]) or 0) > 0 then redis.call('HINCRBY', key, 'inf', -1) end
if tonumber(h[1]) == 2 and (tonumber(h[2]) or 0) > 0 then redis.call('HINCRBY', key, 'pi', -1) end
return 0
