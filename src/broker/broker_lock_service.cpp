// Shared locks: the broker's answers turned into the lock service's values.
#include "broker/broker_lock_service.hpp"

#include <algorithm>

namespace photon::broker {
namespace {

using core::LockOutcome;
using core::LockRefusal;
using core::LockResult;
using std::chrono::milliseconds;
// A waiter asks again at least this often: a release notification lost while the broker
// reconnected must not leave it waiting for its whole wait.
constexpr milliseconds kRetryAtLeastEvery{1000};
// Releases of departed connections' locks kept for a retry while Redis is away; beyond it, a
// lock is left to its lease (it expires in Redis by itself).
constexpr std::size_t kMaxOrphans = 100'000;

std::chrono::system_clock::time_point from_millis(EpochMillis millis) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
}

}  // namespace

BrokerLockService::BrokerLockService(const Clock& clock, Broker& broker, core::TokenMark& tokens,
                                     core::LockLimits limits, std::function<void()> changed)
    : clock_(clock),
      broker_(broker),
      tokens_(tokens),
      limits_(limits),
      changed_(std::move(changed)) {}

BrokerLockService::~BrokerLockService() = default;

std::size_t BrokerLockService::waiters_of(core::ConnectionId connection) const {
  auto found = by_connection_.find(connection);
  return found == by_connection_.end() ? 0 : found->second.size();
}

std::size_t BrokerLockService::waiters_on(const std::string& name) const {
  auto found = by_name_.find(name);
  return found == by_name_.end() ? 0 : found->second.size();
}

core::LockView BrokerLockService::view(const SharedLock& lock) const {
  return {
      lock.name,  lock.holder,          from_millis(lock.acquired_at), from_millis(lock.expires_at),
      lock.token, waiters_on(lock.name)};
}

void BrokerLockService::acquire(const core::LockRequest& request, core::LockDone done) {
  Call call{request.connection,
            std::string(request.name),
            std::string(request.holder),
            request.lease,
            request.wait,
            request.release_on_disconnect,
            request.renew_token,
            std::make_shared<core::LockDone>(std::move(done))};
  if (call.wait.count() > 0) {
    const bool per_connection = waiters_of(call.connection) >= limits_.max_waiters_per_connection;
    if (per_connection || waiters_.size() >= limits_.max_waiters) {
      (*call.done)(
          {LockOutcome::kRefused,
           {},
           per_connection ? LockRefusal::kTooManyWaitersOnConnection : LockRefusal::kTooManyWaiters,
           per_connection ? limits_.max_waiters_per_connection : limits_.max_waiters,
           {}});
      return;
    }
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

void BrokerLockService::attempt(Call call, std::uint64_t waiter_id) {
  const std::string name = call.name;
  const std::string holder = call.holder;
  const milliseconds lease = call.lease;
  const auto bind_to =
      call.release_on_disconnect ? std::optional<std::uint64_t>(call.connection) : std::nullopt;
  // Read before the call: its arguments may be evaluated after the lambda has taken `call`.
  const std::uint64_t renew_token = call.renew_token;
  broker_.acquire(name, holder, lease, tokens_.floor(), bind_to, renew_token,
                  [alive = std::weak_ptr<BrokerLockService*>(self_), call = std::move(call),
                   waiter_id](SharedLockResult result) mutable {
                    if (auto owner = alive.lock())
                      (*owner)->answered(std::move(call), waiter_id, result);
                  });
}

void BrokerLockService::answered(Call call, std::uint64_t waiter_id,
                                 const SharedLockResult& result) {
  auto waiter = waiters_.find(waiter_id);
  const bool waiting = waiter_id != 0;
  // A waiter whose connection closed meanwhile: a lock it got is given back (nobody knows of it).
  if (waiting && waiter == waiters_.end()) {
    if (result.outcome == SharedLockOutcome::kAcquired) {
      broker_.release(call.name, call.holder, [](SharedReleaseResult) {});
    } else if (result.outcome == SharedLockOutcome::kExtended && call.release_on_disconnect) {
      release_orphan(call.name, call.connection);  // just bound to the closed connection
    }
    return;
  }
  switch (result.outcome) {
    case SharedLockOutcome::kFailed:
      return finish(call, waiter_id,
                    {LockOutcome::kRefused, {}, LockRefusal::kUnavailable, 0, result.error});
    case SharedLockOutcome::kNoToken:
      return finish(call, waiter_id,
                    {LockOutcome::kRefused, {}, LockRefusal::kTokensExhausted, 0, {}});
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
      return finish(call, waiter_id,
                    {LockOutcome::kRefused, {}, LockRefusal::kTooManyLocks, limits_.max_locks, {}});
    }
    case SharedLockOutcome::kAcquired:
    case SharedLockOutcome::kExtended:
      // No answer carries a token that the mark on disk does not cover: restarted, this daemon
      // asks for tokens above it, whatever Redis lost meanwhile. A waiter stays in flight (its
      // connection may still close) until the mark is written.
      tokens_.cover(result.lock.token,
                    [alive = std::weak_ptr<BrokerLockService*>(self_), call = std::move(call),
                     waiter_id, result](std::optional<std::string> error) mutable {
                      if (auto owner = alive.lock())
                        (*owner)->granted(std::move(call), waiter_id, result, error);
                    });
      return;
    case SharedLockOutcome::kRefused: {
      tokens_.observe(result.lock.token);
      // Another holder has it now, or nobody (a refused renewal); the same holder under a newer
      // token (a refused renewal) may still hold it through this daemon.
      if (result.lock.holder != call.holder) held_here_.erase(call.name);
      if (call.renew_token != 0) {
        // A renewal never waits (the request's rules refuse lockWait with it).
        return finish(call, waiter_id,
                      {LockOutcome::kRefused, view(result.lock), LockRefusal::kLeaseEnded, 0, {}});
      }
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
      return finish(call, waiter_id,
                    {LockOutcome::kRefused,
                     view(result.lock),
                     waiting ? LockRefusal::kWaitTimedOut : LockRefusal::kHeld,
                     0,
                     {}});
    }
  }
}

void BrokerLockService::granted(Call call, std::uint64_t waiter_id, const SharedLockResult& result,
                                const std::optional<std::string>& error) {
  const bool acquired = result.outcome == SharedLockOutcome::kAcquired;
  // Given back when nobody will hear of it, or when its token could be issued again after a
  // restart (the mark could not be written): no client holds it then.
  const auto give_back = [&] {
    if (acquired) {
      broker_.release(call.name, call.holder, [](SharedReleaseResult) {});
    } else if (call.release_on_disconnect) {
      release_orphan(call.name, call.connection);  // an extension bound to a closed connection
    }
  };
  if (waiter_id != 0 && !waiters_.contains(waiter_id)) return give_back();
  if (error) {
    give_back();
    return finish(call, waiter_id,
                  {LockOutcome::kRefused, {}, LockRefusal::kTokenNotIssued, 0, *error});
  }
  held_here_[call.name] = {result.lock.holder, result.lock.expires_at};
  finish(call, waiter_id,
         {acquired ? LockOutcome::kAcquired : LockOutcome::kExtended, view(result.lock)}, acquired);
}

void BrokerLockService::finish(const Call& call, std::uint64_t waiter_id, const LockResult& result,
                               bool acquired) {
  if (waiter_id != 0) remove_waiter(waiter_id);
  const bool granted =
      result.outcome == LockOutcome::kAcquired || result.outcome == LockOutcome::kExtended;
  if ((*call.done)(result)) {
    if (granted && call.release_on_disconnect) bound_[call.connection].insert(call.name);
  } else if (acquired && call.release_on_disconnect) {
    forget(call.name, call.holder);
    broker_.release(call.name, call.holder, [](SharedReleaseResult) {});
  } else if (granted && call.release_on_disconnect) {
    release_orphan(call.name, call.connection);  // extended and bound to a closed connection
  }
  if (changed_) changed_();
}

void BrokerLockService::remove_waiter(std::uint64_t waiter_id) {
  auto found = waiters_.find(waiter_id);
  if (found == waiters_.end()) return;
  const Call& call = found->second.call;
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

void BrokerLockService::forget(const std::string& name, const std::string& holder) {
  auto found = held_here_.find(name);
  if (found != held_here_.end() && found->second.first == holder) held_here_.erase(found);
}

void BrokerLockService::release(core::ConnectionId connection, std::string_view name,
                                std::string_view holder, core::ReleaseDone done) {
  std::pair<std::string, std::string> key{std::string(name), std::string(holder)};
  broker_.release(key.first, key.second,
                  [alive = std::weak_ptr<BrokerLockService*>(self_), key, connection,
                   done = std::move(done)](SharedReleaseResult result) {
                    auto owner = alive.lock();
                    if (!owner) return;
                    // The lock ended (or was not held): no binding of it remains. A refused
                    // release leaves the lock, and its binding, as they were.
                    if (result.outcome == SharedReleaseOutcome::kReleased ||
                        result.outcome == SharedReleaseOutcome::kNotHeld) {
                      (*owner)->unbind(connection, key.first);
                    }
                    switch (result.outcome) {
                      case SharedReleaseOutcome::kFailed:
                        return done({core::ReleaseOutcome::kUnavailable, {}, result.error});
                      case SharedReleaseOutcome::kHeldByOther:
                        (*owner)->held_here_.erase(key.first);
                        return done({core::ReleaseOutcome::kHeldByOther, result.holder, {}});
                      case SharedReleaseOutcome::kNotHeld:
                        (*owner)->forget(key.first, key.second);
                        return done({core::ReleaseOutcome::kNotHeld, {}, {}});
                      case SharedReleaseOutcome::kReleased:
                        (*owner)->forget(key.first, key.second);
                        return done({core::ReleaseOutcome::kReleased, {}, {}});
                    }
                  });
}

void BrokerLockService::list(core::ListDone done) {
  broker_.list(limits_.max_locks,
               [alive = std::weak_ptr<BrokerLockService*>(self_), done = std::move(done)](
                   std::vector<SharedLock> locks, std::string error) {
                 auto owner = alive.lock();
                 if (!owner) return;
                 if (!error.empty()) return done({{}, std::move(error)});
                 core::LockListResult result;
                 result.locks.reserve(locks.size());
                 for (const SharedLock& lock : locks) {
                   (*owner)->tokens_.observe(lock.token);
                   result.locks.push_back((*owner)->view(lock));
                 }
                 done(result);
               });
}

void BrokerLockService::query(std::string_view name, core::QueryDone done) {
  broker_.query(std::string(name),
                [alive = std::weak_ptr<BrokerLockService*>(self_), done = std::move(done)](
                    std::optional<SharedLock> lock, std::string error) {
                  auto owner = alive.lock();
                  if (!owner) return;
                  if (!error.empty()) return done({std::nullopt, std::move(error)});
                  core::LockQueryResult result;
                  if (lock) {
                    (*owner)->tokens_.observe(lock->token);
                    result.lock = (*owner)->view(*lock);
                  }
                  done(result);
                });
}

void BrokerLockService::connection_closed(core::ConnectionId connection) {
  if (auto waiting = by_connection_.find(connection); waiting != by_connection_.end()) {
    const std::set<std::uint64_t> ids = waiting->second;
    for (std::uint64_t waiter_id : ids) remove_waiter(waiter_id);
  }
  if (auto bound = bound_.find(connection); bound != bound_.end()) {
    auto locks = std::move(bound->second);
    bound_.erase(bound);
    for (const std::string& name : locks) release_orphan(name, connection);
  }
}

void BrokerLockService::unbind(core::ConnectionId connection, const std::string& name) {
  if (auto bound = bound_.find(connection); bound != bound_.end()) {
    bound->second.erase(name);
    if (bound->second.empty()) bound_.erase(bound);
  }
}

void BrokerLockService::release_orphan(std::string name, core::ConnectionId connection) {
  broker_.release_bound(
      name, connection,
      [alive = std::weak_ptr<BrokerLockService*>(self_), name,
       connection](SharedReleaseResult result) {
        auto owner = alive.lock();
        if (!owner) return;
        BrokerLockService& self = **owner;
        if (result.outcome != SharedReleaseOutcome::kFailed) {
          self.orphaned_.erase({name, connection});
          // Freed, or gone already: no longer held through this daemon. Bound elsewhere (a
          // later request asked for it): held as it was.
          if (result.outcome != SharedReleaseOutcome::kHeldByOther) self.held_here_.erase(name);
          return;
        }
        if (self.orphaned_.size() >= kMaxOrphans && !self.orphaned_.contains({name, connection}))
          return;
        self.orphaned_.emplace(name, connection);
        if (!self.orphans_retry_at_) {
          self.orphans_retry_at_ = self.clock_.steady() + std::chrono::seconds(1);
          if (self.changed_) self.changed_();
        }
      });
}

void BrokerLockService::lock_released(std::string_view name) {
  auto found = by_name_.find(std::string(name));
  if (found == by_name_.end()) return;
  const auto now = clock_.steady();
  for (std::uint64_t waiter_id : found->second) {
    Waiter& waiter = waiters_.at(waiter_id);
    if (!waiter.in_flight) waiter.retry_at = now;
  }
  expire_due();
}

void BrokerLockService::expire_due() {
  const auto now = clock_.steady();
  // Leases that ended are no longer held through this daemon (Redis expired them by itself).
  const EpochMillis wall = epoch_millis(clock_.system());
  std::erase_if(held_here_, [wall](const auto& entry) { return entry.second.second <= wall; });
  if (orphans_retry_at_ && *orphans_retry_at_ <= now) {
    orphans_retry_at_.reset();
    const auto orphans = orphaned_;
    for (const auto& [name, connection] : orphans) release_orphan(name, connection);
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

std::optional<std::chrono::steady_clock::time_point> BrokerLockService::next_deadline() const {
  std::optional<SteadyTime> next = orphans_retry_at_;
  for (const auto& [waiter_id, waiter] : waiters_) {
    if (waiter.in_flight) continue;
    if (!next || waiter.retry_at < *next) next = waiter.retry_at;
  }
  return next;
}

std::size_t BrokerLockService::held() const {
  const EpochMillis wall = epoch_millis(clock_.system());
  return static_cast<std::size_t>(
      std::count_if(held_here_.begin(), held_here_.end(),
                    [wall](const auto& entry) { return entry.second.second > wall; }));
}

}  // namespace photon::broker
