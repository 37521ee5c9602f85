-- Acquire: a free lock is taken with a new fencing token; the holder's own lock is extended;
-- another's is reported with its remaining lease. The lock's name goes into the photon's index of
-- locks, scored by expiry, which list_locks reads. A free lock is refused (3) while the index
-- counts the photon's limit of locks: entries of locks that expired are pruned first, so only held
-- locks count (looked at: entries whose expiry is at most a minute ahead of this daemon's clock,
-- the hosts' clocks may differ that much; oldest first, at most 1000 per call).
-- A new token is the greatest of: the counter plus one (tokens increase while Redis keeps it);
-- Redis's clock in microseconds (so a Redis that lost the counter, whether restarted empty,
-- flushed or replaced by a replica that lagged, still starts above every token issued before:
-- those were at most its clock then); and the daemon's floor plus one (what it handed out or
-- saw, which holds when Redis's clock went back). The counter keeps the token. A token above
-- the largest a JavaScript number holds exactly is refused (4), and nothing is taken.
-- The field `bound` names the daemon's connection the lock ends with (releaseOnDisconnect,
-- release.lua): set by a grant that asks for it, kept by an extension that does not, empty on a
-- new acquisition that does not.
-- A renewal (ARGV[11] a token) is only an extension of the holder's lock under that token: a free
-- lock, or the holder's under another token, is refused (0, with the lock as it is) untouched.
-- KEYS: lock, fence counter, index. ARGV: holder, lease ms, now ms, daemon, floor, name, max
-- locks, lock key prefix, largest token, binding (empty: none asked), renewed token (empty: none). Numbers go to redis.call as numbers: Redis writes them
-- with 17 digits, exactly (Lua's own tostring would round them to 14).
local h = redis.call('HGET', KEYS[1], 'holder')
local renewing = ARGV[11] ~= nil and ARGV[11] ~= ''
if not h and renewing then return {0, '', 0, 0, 0} end
if not h then
  local limit = tonumber(ARGV[7])
  if redis.call('ZCARD', KEYS[3]) >= limit then
    local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[3]) + 60000, 'LIMIT', 0, 1000)
    for _, name in ipairs(due) do
      if redis.call('EXISTS', ARGV[8] .. name) == 0 then redis.call('ZREM', KEYS[3], name) end
    end
    if redis.call('ZCARD', KEYS[3]) >= limit then return {3, '', 0, 0, 0} end
  end
  local clock = redis.call('TIME')
  local t = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
  local counter = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if counter + 1 > t then t = counter + 1 end
  if tonumber(ARGV[5]) + 1 > t then t = tonumber(ARGV[5]) + 1 end
  if t > tonumber(ARGV[9]) then return {4, '', 0, 0, 0} end
  redis.call('SET', KEYS[2], t)
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', t, 'acquired', ARGV[3], 'daemon', ARGV[4],
             'bound', ARGV[10])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[6])
  return {1, ARGV[1], t, tonumber(ARGV[3]), tonumber(ARGV[2])}
end
local t = tonumber(redis.call('HGET', KEYS[1], 'token'))
local a = tonumber(redis.call('HGET', KEYS[1], 'acquired'))
if h == ARGV[1] and not (renewing and t ~= tonumber(ARGV[11])) then
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'bound', ARGV[10]) end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[6])
  return {2, h, t, a, tonumber(ARGV[2])}
end
return {0, h, t, a, redis.call('PTTL', KEYS[1])}
