// The Redis broker's locks: one hash per lock with its holder, token and acquisition time, a lease
// as its expiry, the photon's index of locks scored by expiry, and a fence counter; every change
// made by a script (src/broker/lua/acquire.lua, release.lua, query.lua, list.lua).
#include "broker/lua_scripts.hpp"
#include "broker/redis_broker.hpp"
#include "broker/redis_reply.hpp"
#include "locks/lock_table.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

namespace photon::broker {
namespace {

// {key, holder, token, acquired, ttl} as the query and list scripts return it.
std::optional<SharedLock> lock_of(const redisReply* row, std::size_t prefix_length,
                                  std::int64_t now) {
  if (row->type != REDIS_REPLY_ARRAY || row->elements < 5) return std::nullopt;
  const std::string_view key = text_of(row->element[0]);
  if (key.size() < prefix_length) return std::nullopt;
  return SharedLock{std::string(key.substr(prefix_length)), std::string(text_of(row->element[1])),
                    integer_of(row->element[3]), now + integer_of(row->element[4]),
                    static_cast<std::uint64_t>(integer_of(row->element[2]))};
}

}  // namespace

void RedisBroker::acquire(const std::string& name, const std::string& holder,
                          std::chrono::milliseconds lease, std::uint64_t above,
                          std::optional<std::uint64_t> bind_to, std::uint64_t renew_token,
                          std::function<void(SharedLockResult)> done) {
  const std::int64_t now = epoch_millis(clock_.system());
  commands_->command(
      {"EVAL", std::string(lua::acquire()), "3", prefix_ + "lock:" + name, prefix_ + "fence",
       prefix_ + "locks", holder, std::to_string(lease.count()), std::to_string(now), instance_id_,
       std::to_string(above), name, std::to_string(options_.max_locks), prefix_ + "lock:",
       std::to_string(core::kMaxFencingToken), bind_to ? binding(*bind_to) : std::string(),
       renew_token == 0 ? std::string() : std::to_string(renew_token)},
      [this, name, done = std::move(done)](const redisReply* reply, const std::string& error) {
        SharedLockResult result;
        if (auto why = failure(reply, error)) {
          result.error = *why;
          return done(std::move(result));
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 5) {
          result.error = "redis: unexpected reply to the lock script";
          return done(std::move(result));
        }
        const std::int64_t code = integer_of(reply->element[0]);
        if (code == 3) {
          result.outcome = SharedLockOutcome::kLimitReached;
          return done(std::move(result));
        }
        if (code == 4) {
          result.outcome = SharedLockOutcome::kNoToken;
          return done(std::move(result));
        }
        result.outcome = code == 1   ? SharedLockOutcome::kAcquired
                         : code == 2 ? SharedLockOutcome::kExtended
                                     : SharedLockOutcome::kRefused;
        result.lock =
            SharedLock{name, std::string(text_of(reply->element[1])), integer_of(reply->element[3]),
                       epoch_millis(clock_.system()) + integer_of(reply->element[4]),
                       static_cast<std::uint64_t>(integer_of(reply->element[2]))};
        done(std::move(result));
      });
}

void RedisBroker::release(const std::string& name, const std::string& holder,
                          std::function<void(SharedReleaseResult)> done) {
  release_lock(name, holder, {}, std::move(done));
}

void RedisBroker::release_bound(const std::string& name, std::uint64_t connection,
                                std::function<void(SharedReleaseResult)> done) {
  release_lock(name, {}, binding(connection), std::move(done));
}

void RedisBroker::release_lock(const std::string& name, const std::string& holder,
                               const std::string& bound,
                               std::function<void(SharedReleaseResult)> done) {
  commands_->command({"EVAL", std::string(lua::release()), "2", prefix_ + "lock:" + name,
                      prefix_ + "locks", holder, channel_prefix_ + "unlock:" + name, name, bound},
                     [done = std::move(done)](const redisReply* reply, const std::string& error) {
                       SharedReleaseResult result;
                       if (auto why = failure(reply, error)) {
                         result.error = *why;
                         return done(std::move(result));
                       }
                       if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
                         result.error = "redis: unexpected reply to the unlock script";
                         return done(std::move(result));
                       }
                       const std::int64_t code = integer_of(reply->element[0]);
                       result.outcome = code == 1   ? SharedReleaseOutcome::kReleased
                                        : code == 2 ? SharedReleaseOutcome::kHeldByOther
                                                    : SharedReleaseOutcome::kNotHeld;
                       result.holder = std::string(text_of(reply->element[1]));
                       done(std::move(result));
                     });
}

void RedisBroker::query(const std::string& name,
                        std::function<void(std::optional<SharedLock>, std::string)> done) {
  commands_->command(
      {"EVAL", std::string(lua::query()), "1", prefix_ + "lock:" + name},
      [this, done = std::move(done)](const redisReply* reply, const std::string& error) {
        if (auto why = failure(reply, error)) return done(std::nullopt, *why);
        if (reply->type == REDIS_REPLY_NIL) return done(std::nullopt, {});
        done(lock_of(reply, prefix_.size() + 5, epoch_millis(clock_.system())), {});
      });
}

void RedisBroker::list(std::size_t limit,
                       std::function<void(std::vector<SharedLock>, std::string)> done) {
  commands_->command(
      {"EVAL", std::string(lua::list()), "1", prefix_ + "locks",
       // Pruned a minute late, so that hosts' clocks may differ that much; PTTL decides.
       std::to_string(epoch_millis(clock_.system()) - 60'000), std::to_string(limit),
       prefix_ + "lock:"},
      [this, done = std::move(done)](const redisReply* reply, const std::string& error) {
        std::vector<SharedLock> locks;
        if (auto why = failure(reply, error)) return done(std::move(locks), *why);
        const std::int64_t now = epoch_millis(clock_.system());
        if (reply->type == REDIS_REPLY_ARRAY) {
          for (std::size_t i = 0; i < reply->elements; ++i) {
            if (auto lock = lock_of(reply->element[i], prefix_.size() + 5, now))
              locks.push_back(std::move(*lock));
          }
        }
        std::sort(locks.begin(), locks.end(),
                  [](const SharedLock& a, const SharedLock& b) { return a.name < b.name; });
        done(std::move(locks), {});
      });
}

}  // namespace photon::broker
