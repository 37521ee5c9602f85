-- A job's slot is claimed by moving the job's last fired slot forward: once per slot, and never
-- for a slot older than one already fired (a daemon waking from a long pause cannot run again a
-- slot the others ran, however long ago). Slots are epoch milliseconds, exact in Lua's numbers.
-- An exclusive claim (overlap "skip") also takes the job's running key, a lease the winner holds
-- while its run lasts; the winner of a slot whose job runs somewhere skips it. Returns 0: lost,
-- 1: won, 2: won while the job runs. A job removed meanwhile (this daemon has not heard yet) is
-- lost, and leaves no marker behind. KEYS: fired, running, definitions. ARGV: slot, daemon,
-- exclusive, lease ms, job id.
if redis.call('HEXISTS', KEYS[3], ARGV[5]) == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'slot') or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'slot', ARGV[1], 'daemon', ARGV[2])
if ARGV[3] == '1' and not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[4]) then return 2 end
return 1
