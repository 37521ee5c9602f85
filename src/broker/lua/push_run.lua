-- A finished run added to its job's history (the newest first, at most ARGV[3]), unless the job
-- was removed meanwhile: its history went with it. KEYS: definitions, runs. ARGV: id, run, keep.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
