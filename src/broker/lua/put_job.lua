-- A job's definition, written only when it differs from the stored one, so that a daemon
-- declaring its jobs at every start changes nothing that is already there. A job new to Redis
-- gets its record too, from the writer's view (a new job's is empty; after Redis lost its data,
-- what the writer knew). KEYS: definitions, record. ARGV: id, definition, notice channel, notice,
-- createdAt, runCount, lastRun (empty: none), lastStatus, lastError.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not old then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'createdAt', ARGV[5], 'runCount', ARGV[6], 'lastStatus', ARGV[8],
             'lastError', ARGV[9])
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'lastRun', ARGV[7]) end
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
