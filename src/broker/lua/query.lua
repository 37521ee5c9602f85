-- One lock as {key, holder, token, acquired, ttl}, as list.lua returns each; nothing when it is
-- free or its lease has passed. KEYS: lock.
local v = redis.call('HMGET', KEYS[1], 'holder', 'token', 'acquired')
local ttl = redis.call('PTTL', KEYS[1])
if not v[1] or ttl <= 0 then return false end
return {KEYS[1], v[1], tonumber(v[2]), tonumber(v[3]), ttl}
