-- A job removed, with its record, slot marker and history. Its running key stays: a run of it may
-- still be going on somewhere, and holds it until it ends. KEYS: definitions, record, fired, runs.
-- ARGV: id, notice channel, notice.
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
