-- Release by the holder only; waiters on every daemon hear of it. KEYS: lock, index. ARGV:
-- holder, notification channel, name.
local h = redis.call('HGET', KEYS[1], 'holder')
if not h then return {0, ''} end
if h ~= ARGV[1] then return {2, h} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return {1, h}
