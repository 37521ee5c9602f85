-- The holder's run ended: the job's running key goes, if it is still the holder's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
