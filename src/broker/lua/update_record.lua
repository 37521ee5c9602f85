-- What runs did to a job's record, applied only while the job exists: a run ending on one daemon
-- can neither bring back a job removed on another nor undo a newer definition. The count is
-- added to (runs ending at once on two daemons both count); lastRun only moves forward.
-- KEYS: definitions, record. ARGV: id, runs ended, lastRun (empty: unchanged), notice channel,
-- notice, then field/value pairs (lastStatus, lastError).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[2], 'runCount', ARGV[2]) end
if ARGV[3] ~= '' and tonumber(ARGV[3]) > tonumber(redis.call('HGET', KEYS[2], 'lastRun') or '0') then
  redis.call('HSET', KEYS[2], 'lastRun', ARGV[3])
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
