// Shared locks: replies in the shapes of docs/locks.md, from the broker's answers.
#include "daemon/shared_locks.hpp"

#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

namespace photon::daemon {
namespace {

using std::chrono::milliseconds;
// A waiter asks again at least this often: a release notification lost while the broker
// reconnected must not leave it waiting for its whole wait.
constexpr milliseconds kRetryAtLeastEvery{1000};

Refused unavailable(const std::string& error) {
  return {RefusalCode::kLockServiceUnavailable, {error}};
}

std::string held_by(std::string_view name, std::string_view holder) {
  return "lock \"" + std::string(name) + "\" is held by " + std::string(holder);
}

boost::json::object lock_json(const broker::SharedLock& lock, std::size_t waiters) {
  return {{"name", lock.name},
          {"holder", lock.holder},
          {"acquiredAt", lock.acquired_at},
          {"expiresAt", lock.expires_at},
          {"token", lock.token},
          {"waiters", waiters}};
}

}  // namespace

SharedLocks::SharedLocks(const Clock& clock, broker::Broker& broker, core::TokenMark& tokens,
                         core::LockLimits limits, Send send, std::function<void()> changed)
    : clock_(clock),
      broker_(broker),
      tokens_(tokens),
      limits_(limits),
      send_(std::move(send)),
      changed_(std::move(changed)) {}

SharedLocks::~SharedLocks() = default;

std::size_t SharedLocks::waiters_of(core::ConnectionId connection) const {
  auto found = by_connection_.find(connection);
  return found == by_connection_.end() ? 0 : found->second.size();
}

void SharedLocks::lock(SharedLockCall call) {
  if (call.wait.count() > 0 &&
      (waiters_.size() >= limits_.max_waiters ||
       waiters_of(call.connection) >= limits_.max_waiters_per_connection)) {
    const bool per_connection = waiters_of(call.connection) >= limits_.max_waiters_per_connection;
    send_(
        call.connection,
        protocol::error_line(
            call.id, per_connection ? Refused{RefusalCode::kTooManyLockWaitersOnConnection,
                                              {std::to_string(limits_.max_waiters_per_connection)}}
                                    : Refused{RefusalCode::kTooManyLockWaiters,
                                              {std::to_string(limits_.max_waiters)}}));
    return;
  }
  std::uint64_t waiter_id = 0;
  if (call.wait.count() > 0) {
    // Registered now, so a closing connection finds it even before the first answer.
    waiter_id = next_waiter_id_++;
    const auto now = clock_.steady();
    waiters_.emplace(waiter_id, Waiter{call, now, now + call.wait, now, true});
    by_name_[call.name].insert(waiter_id);
    by_connection_[call.connection].insert(waiter_id);
  }
  attempt(std::move(call), waiter_id);
}

void SharedLocks::attempt(SharedLockCall call, std::uint64_t waiter_id) {
  const std::string name = call.name;
  const std::string holder = call.holder;
  const milliseconds lease = call.lease;
  broker_.acquire(name, holder, lease, tokens_.floor(),
                  [alive = std::weak_ptr<SharedLocks*>(self_), call = std::move(call),
                   waiter_id](broker::SharedLockResult result) mutable {
                    if (auto owner = alive.lock())
                      (*owner)->answered(std::move(call), waiter_id, result);
                  });
}

void SharedLocks::answered(SharedLockCall call, std::uint64_t waiter_id,
                           const broker::SharedLockResult& result) {
  using broker::SharedLockOutcome;
  auto waiter = waiters_.find(waiter_id);
  const bool waiting = waiter_id != 0;
  // A waiter whose connection closed meanwhile: a lock it got is given back (nobody knows of it).
  if (waiting && waiter == waiters_.end()) {
    if (result.outcome == SharedLockOutcome::kAcquired) {
      broker_.release(call.name, call.holder, [](broker::SharedReleaseResult) {});
    }
    return;
  }
  std::string line;
  switch (result.outcome) {
    case SharedLockOutcome::kFailed:
      line = protocol::error_line(call.id, unavailable(result.error));
      break;
    case SharedLockOutcome::kNoToken:
      line = protocol::error_line(call.id, result.error);
      break;
    case SharedLockOutcome::kLimitReached: {
      // A waiter that queued for a held lock keeps waiting when it finds the lock free but the
      // photon at its limit (another daemon took a lock in between): a local table hands a
      // released lock to its waiter without counting it again. A first ask is refused as a
      // local table at its limit refuses it.
      const auto now = clock_.steady();
      if (waiting && waiter->second.refused_before && now < waiter->second.deadline) {
        waiter->second.retry_at = std::min(now + kRetryAtLeastEvery, waiter->second.deadline);
        waiter->second.in_flight = false;
        waiter->second.call = std::move(call);
        if (changed_) changed_();
        return;
      }
      line = protocol::error_line(call.id, result.error);
      break;
    }
    case SharedLockOutcome::kAcquired:
    case SharedLockOutcome::kExtended:
      // No reply carries a token that the mark on disk does not cover: restarted, this daemon
      // asks for tokens above it, whatever Redis lost meanwhile. A waiter stays in flight (its
      // connection may still close) until the mark is written.
      tokens_.cover(result.lock.token,
                    [alive = std::weak_ptr<SharedLocks*>(self_), call = std::move(call), waiter_id,
                     result](std::optional<std::string> error) mutable {
                      if (auto owner = alive.lock())
                        (*owner)->granted(std::move(call), waiter_id, result, error);
                    });
      return;
    case SharedLockOutcome::kRefused: {
      tokens_.observe(result.lock.token);
      const auto now = clock_.steady();
      if (waiting && now < waiter->second.deadline) {
        // Asked again when the holder's lease ends (expiry sends no notification), on a release
        // notification, and at least every second; never past the wait's end.
        const auto left = milliseconds(
            std::max<std::int64_t>(1, result.lock.expires_at - epoch_millis(clock_.system())));
        waiter->second.retry_at =
            std::min({now + std::min(left, kRetryAtLeastEvery), waiter->second.deadline});
        waiter->second.in_flight = false;
        waiter->second.refused_before = true;
        waiter->second.call = std::move(call);
        if (changed_) changed_();
        return;
      }
      std::string reason = held_by(call.name, result.lock.holder);
      if (waiting)
        reason = "timed out after " + std::to_string(call.wait.count()) + " ms: " + reason;
      line = protocol::result_line(call.id, false,
                                   boost::json::object{{"acquired", false},
                                                       {"lockName", call.name},
                                                       {"holder", result.lock.holder},
                                                       {"expiresAt", result.lock.expires_at},
                                                       {"reason", reason}});
      break;
    }
  }
  finish(call, waiter_id, false, line);
}

void SharedLocks::granted(SharedLockCall call, std::uint64_t waiter_id,
                          const broker::SharedLockResult& result,
                          const std::optional<std::string>& error) {
  const bool acquired = result.outcome == broker::SharedLockOutcome::kAcquired;
  // Given back when nobody will hear of it, or when its token could be issued again after a
  // restart (the mark could not be written): no client holds it then.
  const auto give_back = [&] {
    if (acquired) broker_.release(call.name, call.holder, [](broker::SharedReleaseResult) {});
  };
  if (waiter_id != 0 && !waiters_.contains(waiter_id)) return give_back();
  if (error) {
    give_back();
    return finish(call, waiter_id, false,
                  protocol::error_line(call.id, Refused{RefusalCode::kTokenNotIssued, {*error}}));
  }
  boost::json::object data{{"acquired", true},
                           {"lockName", call.name},
                           {"holder", result.lock.holder},
                           {"acquiredAt", result.lock.acquired_at},
                           {"expiresAt", result.lock.expires_at},
                           {"token", result.lock.token}};
  if (!acquired) data["extended"] = true;
  finish(call, waiter_id, true, protocol::result_line(call.id, true, data), acquired);
}

void SharedLocks::finish(const SharedLockCall& call, std::uint64_t waiter_id, bool granted,
                         const std::string& line, bool acquired) {
  if (waiter_id != 0) remove_waiter(waiter_id);
  if (send_(call.connection, line)) {
    if (granted && call.release_on_disconnect)
      bound_[call.connection].emplace(call.name, call.holder);
  } else if (acquired && call.release_on_disconnect) {
    broker_.release(call.name, call.holder, [](broker::SharedReleaseResult) {});
  }
  if (changed_) changed_();
}

void SharedLocks::remove_waiter(std::uint64_t waiter_id) {
  auto found = waiters_.find(waiter_id);
  if (found == waiters_.end()) return;
  const SharedLockCall& call = found->second.call;
  if (auto names = by_name_.find(call.name); names != by_name_.end()) {
    names->second.erase(waiter_id);
    if (names->second.empty()) by_name_.erase(names);
  }
  if (auto connection = by_connection_.find(call.connection); connection != by_connection_.end()) {
    connection->second.erase(waiter_id);
    if (connection->second.empty()) by_connection_.erase(connection);
  }
  waiters_.erase(found);
}

void SharedLocks::unlock(core::ConnectionId connection, std::string id, std::string name,
                         std::string holder) {
  if (auto bound = bound_.find(connection); bound != bound_.end()) {
    bound->second.erase({name, holder});
    if (bound->second.empty()) bound_.erase(bound);
  }
  broker_.release(
      name, holder,
      [alive = std::weak_ptr<SharedLocks*>(self_), connection, id = std::move(id),
       name](broker::SharedReleaseResult result) {
        auto owner = alive.lock();
        if (!owner) return;
        SharedLocks& self = **owner;
        using broker::SharedReleaseOutcome;
        if (result.outcome == SharedReleaseOutcome::kFailed) {
          self.send_(connection, protocol::error_line(id, unavailable(result.error)));
        } else if (result.outcome == SharedReleaseOutcome::kHeldByOther) {
          self.send_(
              connection,
              protocol::result_line(id, false,
                                    boost::json::object{{"released", false},
                                                        {"lockName", name},
                                                        {"reason", held_by(name, result.holder)}}));
        } else {
          self.send_(connection,
                     protocol::result_line(
                         id, true, boost::json::object{{"released", true}, {"lockName", name}}));
        }
      });
}

void SharedLocks::list(core::ConnectionId connection, std::string id) {
  broker_.list(limits_.max_locks, [alive = std::weak_ptr<SharedLocks*>(self_), connection,
                                   id = std::move(id)](std::vector<broker::SharedLock> locks,
                                                       std::string error) {
    auto owner = alive.lock();
    if (!owner) return;
    SharedLocks& self = **owner;
    if (!error.empty()) {
      self.send_(connection, protocol::error_line(id, unavailable(error)));
      return;
    }
    boost::json::array listed;
    for (const broker::SharedLock& lock : locks) {
      self.tokens_.observe(lock.token);
      auto waiting = self.by_name_.find(lock.name);
      listed.push_back(
          lock_json(lock, waiting == self.by_name_.end() ? 0 : waiting->second.size()));
    }
    self.send_(connection,
               protocol::result_line(id, true, boost::json::object{{"locks", std::move(listed)}}));
  });
}

void SharedLocks::query(core::ConnectionId connection, std::string id, std::string name) {
  broker_.query(name, [alive = std::weak_ptr<SharedLocks*>(self_), connection, id = std::move(id)](
                          std::optional<broker::SharedLock> lock, std::string error) {
    auto owner = alive.lock();
    if (!owner) return;
    SharedLocks& self = **owner;
    if (!error.empty()) {
      self.send_(connection, protocol::error_line(id, unavailable(error)));
      return;
    }
    boost::json::value found(nullptr);
    if (lock) {
      self.tokens_.observe(lock->token);
      auto waiting = self.by_name_.find(lock->name);
      found = lock_json(*lock, waiting == self.by_name_.end() ? 0 : waiting->second.size());
    }
    self.send_(connection,
               protocol::result_line(id, true, boost::json::object{{"lock", std::move(found)}}));
  });
}

void SharedLocks::connection_closed(core::ConnectionId connection) {
  if (auto waiting = by_connection_.find(connection); waiting != by_connection_.end()) {
    const std::set<std::uint64_t> ids = waiting->second;
    for (std::uint64_t waiter_id : ids) remove_waiter(waiter_id);
  }
  if (auto bound = bound_.find(connection); bound != bound_.end()) {
    auto locks = std::move(bound->second);
    bound_.erase(bound);
    for (const auto& [name, holder] : locks) release_orphan(name, holder);
  }
}

void SharedLocks::release_orphan(std::string name, std::string holder) {
  constexpr std::size_t kMaxOrphans = 100'000;
  broker_.release(
      name, holder,
      [alive = std::weak_ptr<SharedLocks*>(self_), name,
       holder](broker::SharedReleaseResult result) {
        auto owner = alive.lock();
        if (!owner) return;
        SharedLocks& self = **owner;
        if (result.outcome != broker::SharedReleaseOutcome::kFailed) {
          self.orphaned_.erase({name, holder});
          return;
        }
        // Beyond the bound, the lock is left to its lease (it expires in Redis by itself).
        if (self.orphaned_.size() >= kMaxOrphans && !self.orphaned_.contains({name, holder}))
          return;
        self.orphaned_.emplace(name, holder);
        if (!self.orphans_retry_at_) {
          self.orphans_retry_at_ = self.clock_.steady() + std::chrono::seconds(1);
          if (self.changed_) self.changed_();
        }
      });
}

void SharedLocks::lock_released(std::string_view name) {
  auto found = by_name_.find(std::string(name));
  if (found == by_name_.end()) return;
  const auto now = clock_.steady();
  for (std::uint64_t waiter_id : found->second) {
    Waiter& waiter = waiters_.at(waiter_id);
    if (!waiter.in_flight) waiter.retry_at = now;
  }
  expire_due();
}

void SharedLocks::expire_due() {
  const auto now = clock_.steady();
  if (orphans_retry_at_ && *orphans_retry_at_ <= now) {
    orphans_retry_at_.reset();
    const auto orphans = orphaned_;
    for (const auto& [name, holder] : orphans) release_orphan(name, holder);
  }
  std::vector<std::uint64_t> due;
  for (auto& [waiter_id, waiter] : waiters_) {
    if (!waiter.in_flight && waiter.retry_at <= now) due.push_back(waiter_id);
  }
  // Each waiter asks once more; at or past its deadline that ask is its last (a refusal then
  // answers "timed out").
  for (std::uint64_t waiter_id : due) {
    Waiter& waiter = waiters_.at(waiter_id);
    waiter.in_flight = true;
    attempt(waiter.call, waiter_id);
  }
}

std::optional<std::chrono::steady_clock::time_point> SharedLocks::next_deadline() const {
  std::optional<SteadyTime> next = orphans_retry_at_;
  for (const auto& [waiter_id, waiter] : waiters_) {
    if (waiter.in_flight) continue;
    if (!next || waiter.retry_at < *next) next = waiter.retry_at;
  }
  return next;
}

}  // namespace photon::daemon
