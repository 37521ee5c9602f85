-- Every job, as one consistent view: {id, definition, createdAt, runCount, lastRun, lastStatus,
-- lastError} each. KEYS: definitions. ARGV: the record key prefix.
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local r = redis.call('HMGET', ARGV[1] .. all[i], 'createdAt', 'runCount', 'lastRun', 'lastStatus',
                       'lastError')
  out[#out + 1] = {all[i], all[i + 1], r[1], r[2], r[3], r[4], r[5]}
end
return out
