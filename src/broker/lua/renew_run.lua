-- The holder of a job's running key renews its lease; 0 when it is no longer the holder (the
-- lease ran out while Redis was away). KEYS: running. ARGV: daemon, lease ms.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
