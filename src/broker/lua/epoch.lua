-- The identity of the Redis data set: made by the first daemon that finds none, so a daemon that
-- reconnects and finds another knows Redis lost its data (a restart without persistence). KEYS:
-- epoch. ARGV: a new epoch.
local e = redis.call('GET', KEYS[1])
if not e then
  redis.call('SET', KEYS[1], ARGV[1])
  e = ARGV[1]
end
return e
