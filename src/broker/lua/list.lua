-- The photon's locks, bounded, from its index (never a SCAN of a Redis that may be shared with
-- millions of other keys); entries whose lease has passed are pruned first. KEYS: index. ARGV:
-- prune before (ms), limit, lock key prefix.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do
  local k = ARGV[3] .. n
  local v = redis.pcall('HMGET', k, 'holder', 'token', 'acquired')
  local ttl = redis.call('PTTL', k)
  if type(v) == 'table' and v[1] and ttl > 0 then
    out[#out + 1] = {k, v[1], tonumber(v[2]), tonumber(v[3]), ttl}
  end
end
return out
