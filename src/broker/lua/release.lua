-- Release by the holder; or, with a binding (that connection of a daemon closed), only while the
-- lock is bound to it (acquire.lua), whoever holds it. Waiters on every daemon hear of it.
-- KEYS: lock, index. ARGV: holder (empty with a binding), notification channel, name, binding
-- (empty: by the holder).
local v = redis.call('HMGET', KEYS[1], 'holder', 'bound')
local h = v[1]
if not h then return {0, ''} end
if ARGV[4] ~= '' then
  if v[2] ~= ARGV[4] then return {2, h} end
elseif h ~= ARGV[1] then
  return {2, h}
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[2], h)
return {1, h}
