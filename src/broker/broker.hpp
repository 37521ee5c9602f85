// What the daemon asks of a broker that joins it to the other daemons of its photon (on other
// hosts), and what the broker tells it. An interface only: the dispatcher sees no Redis.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace photon::broker {

using EpochMillis = std::int64_t;

// A lock as every daemon of the photon sees it.
struct SharedLock {
  std::string name;
  std::string holder;
  EpochMillis acquired_at = 0;
  EpochMillis expires_at = 0;
  std::uint64_t token = 0;
};

// kLimitReached: the lock is free but the photon holds its --max-locks locks already.
// kNoToken: the lock is free but no token above every earlier one fits in core::kMaxFencingToken.
enum class SharedLockOutcome { kAcquired, kExtended, kRefused, kLimitReached, kNoToken, kFailed };
struct SharedLockResult {
  SharedLockOutcome outcome = SharedLockOutcome::kFailed;
  SharedLock lock;    // for kRefused: the other holder's
  std::string error;  // for kFailed: why the lock service could not answer
                      // (kLimitReached: the photon's lock limit; kNoToken: the next token
                      // would pass kMaxFencingToken)
};

enum class SharedReleaseOutcome { kReleased, kNotHeld, kHeldByOther, kFailed };
struct SharedReleaseResult {
  SharedReleaseOutcome outcome = SharedReleaseOutcome::kFailed;
  std::string holder;  // for kHeldByOther
  std::string error;   // for kFailed
};

// What arrives from the other daemons. Called on the event loop thread.
class BrokerListener {
 public:
  virtual ~BrokerListener() = default;
  // A message another daemon published (its own subscribers have it already), or a photon-core
  // broker did; false when the daemon refused it (a channel name it does not accept).
  virtual bool remote_message(std::string_view channel, const boost::json::value& message) = 0;
  // A lock was released somewhere (its waiters here may try again).
  virtual void lock_released(std::string_view name) = 0;
  // Shared state changed under the daemon (a job scheduled elsewhere): time to reschedule.
  virtual void shared_state_changed() = 0;
};

// Every callback runs later on the event loop thread, exactly once, also when the broker cannot
// reach its server (then with an error: a lock is never granted by this daemon alone).
// Thread rule: the event loop thread only.
class Broker {
 public:
  virtual ~Broker() = default;
  virtual void set_listener(BrokerListener* listener) = 0;

  // Sends a message published here to the other daemons: at most once, in call order; dropped
  // (and counted) while the broker's server is unreachable or too slow.
  virtual void forward(std::string_view channel, const boost::json::value& message) = 0;

  // A new acquisition's token is greater than every token issued before by any daemon of the
  // photon, as far as the broker knows, and greater than `above` (what this daemon has handed
  // out or seen: the broker may have lost what it knew).
  // `bind_to`: the connection of this daemon that asked for releaseOnDisconnect; a granted
  // request binds the lock to it, whoever bound it before. A new acquisition without it is bound
  // to no connection; an extension without it keeps the lock's binding. The binding ends with the
  // lock. (One daemon's rule, src/locks/lock_table.cpp, kept where every daemon sees it.)
  // `renew_token` non-zero: only an extension of `holder`'s lock under that token is granted; a
  // free lock or another token is kRefused (with the lock as it is now, holder empty when free)
  // and nothing is taken.
  virtual void acquire(const std::string& name, const std::string& holder,
                       std::chrono::milliseconds lease, std::uint64_t above,
                       std::optional<std::uint64_t> bind_to, std::uint64_t renew_token,
                       std::function<void(SharedLockResult)> done) = 0;
  virtual void release(const std::string& name, const std::string& holder,
                       std::function<void(SharedReleaseResult)> done) = 0;
  // `connection` of this daemon closed: releases the lock only while it is bound to that
  // connection, whoever holds it (kHeldByOther while it is bound to another or to none).
  virtual void release_bound(const std::string& name, std::uint64_t connection,
                             std::function<void(SharedReleaseResult)> done) = 0;
  // The lock, or nothing when free; or an error.
  virtual void query(const std::string& name,
                     std::function<void(std::optional<SharedLock>, std::string error)> done) = 0;
  // Every held lock sorted by name (at most `limit`); or an error.
  virtual void list(std::size_t limit,
                    std::function<void(std::vector<SharedLock>, std::string error)> done) = 0;
  // The newest runs of a job, newest first, as JSON objects of the job_history reply; or an error.
  virtual void job_history(const std::string& job_id, std::size_t limit,
                           std::function<void(boost::json::array, std::string error)> done) = 0;

  // The `broker` member of `status`.
  virtual boost::json::object status() const = 0;
};

}  // namespace photon::broker
