-- One job as {definition, createdAt, runCount, lastRun, lastStatus, lastError}; nothing when it is
-- gone. KEYS: definitions, record. ARGV: id.
local d = redis.call('HGET', KEYS[1], ARGV[1])
if not d then return false end
local r = redis.call('HMGET', KEYS[2], 'createdAt', 'runCount', 'lastRun', 'lastStatus', 'lastError')
return {d, r[1], r[2], r[3], r[4], r[5]}
