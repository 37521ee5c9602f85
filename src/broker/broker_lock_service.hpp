// Locks held in the broker (Redis) instead of this daemon's table, so exclusion holds across the
// daemons of a photon on several hosts: the same answers as local locks, given when the broker
// answers; waiting acquires retried on release notifications and at the holder's expiry.
#pragma once

#include "broker/broker.hpp"
#include "common/clock.hpp"
#include "locks/lock_service.hpp"
#include "locks/token_mark.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

namespace photon::broker {

// Invariants: a waiter is in waiters_ and in by_name_ under its lock's name until it is answered
// or its connection closes; at most one broker request per waiter is in flight (its grant waiting
// for the token mark counts as in flight); no answer carries a token above tokens_.durable().
// Thread rule: the event loop thread only.
class BrokerLockService final : public core::LockService {
 public:
  // `changed` is called after an asynchronous answer changed what next_deadline() says.
  // `tokens` (the daemon's high-water mark) gives the floor of every token asked for, and covers
  // each token on disk before an answer carries it; it and `broker` outlive this object.
  BrokerLockService(const Clock& clock, Broker& broker, core::TokenMark& tokens,
                    core::LockLimits limits, std::function<void()> changed);
  ~BrokerLockService() override;

  void acquire(const core::LockRequest& request, core::LockDone done) override;
  void release(core::ConnectionId connection, std::string_view name, std::string_view holder,
               core::ReleaseDone done) override;
  void query(std::string_view name, core::QueryDone done) override;
  void list(core::ListDone done) override;
  // Its waiters leave; the locks bound to it are released: those whose last request with
  // releaseOnDisconnect came through it, on any daemon (the binding is kept in the broker).
  void connection_closed(core::ConnectionId connection) override;
  // Retries waiters whose holder's lease has ended; answers waiters whose wait ran out; retries
  // releases of departed connections' locks that could not reach Redis.
  void expire_due() override;
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const override;
  // The locks granted through this daemon whose lease has not ended and that were not released
  // through it (another daemon's release of the same holder's lock is not seen here).
  std::size_t held() const override;

  // A lock was released on some daemon: its waiters here try again at once.
  void lock_released(std::string_view name);

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  // One acquire as asked, with its completion.
  struct Call {
    core::ConnectionId connection = 0;
    std::string name;
    std::string holder;
    std::chrono::milliseconds lease{30'000};
    std::chrono::milliseconds wait{0};
    bool release_on_disconnect = false;
    std::uint64_t renew_token = 0;  // non-zero: a renewal, refused (kLeaseEnded) unless extended
    std::shared_ptr<core::LockDone> done;
  };
  struct Waiter {
    Call call;
    SteadyTime started;
    SteadyTime deadline;
    SteadyTime retry_at;
    bool in_flight = false;
    bool refused_before = false;  // the lock was held by another at an earlier ask
  };

  // Asks the broker for the lock on behalf of `call` (a waiter's, when waiter_id is non-zero).
  void attempt(Call call, std::uint64_t waiter_id);
  void answered(Call call, std::uint64_t waiter_id, const SharedLockResult& result);
  // An acquisition or extension whose token the mark on disk now covers (or could not: `error`).
  void granted(Call call, std::uint64_t waiter_id, const SharedLockResult& result,
               const std::optional<std::string>& error);
  // Gives `result` to `call`; a waiter leaves the queue. `acquired`: the lock is newly the
  // caller's (given back if the caller has gone and asked for releaseOnDisconnect).
  void finish(const Call& call, std::uint64_t waiter_id, const core::LockResult& result,
              bool acquired = false);
  void remove_waiter(std::uint64_t waiter_id);
  // Releases `name` if it is still bound to `connection`, which has gone; kept for a retry if
  // Redis is away.
  void release_orphan(std::string name, core::ConnectionId connection);
  // `connection` released `name` (or found it free): its close need not release it.
  void unbind(core::ConnectionId connection, const std::string& name);
  std::size_t waiters_of(core::ConnectionId connection) const;
  std::size_t waiters_on(const std::string& name) const;
  core::LockView view(const SharedLock& lock) const;
  // The lock is no longer held through this daemon by `holder`.
  void forget(const std::string& name, const std::string& holder);

  const Clock& clock_;
  Broker& broker_;
  core::TokenMark& tokens_;
  core::LockLimits limits_;
  std::function<void()> changed_;
  std::map<std::uint64_t, Waiter> waiters_;
  std::unordered_map<std::string, std::set<std::uint64_t>> by_name_;
  std::unordered_map<core::ConnectionId, std::set<std::uint64_t>> by_connection_;
  // Locks granted with releaseOnDisconnect, per connection, until it releases them: those its
  // close asks the broker to release if they are still bound to it (the broker knows whether a
  // later request, on any daemon, bound them elsewhere or the lock ended).
  std::unordered_map<core::ConnectionId, std::set<std::string>> bound_;
  // Locks granted through this daemon: name -> (holder, lease end in epoch milliseconds).
  std::unordered_map<std::string, std::pair<std::string, EpochMillis>> held_here_;
  // Releases on disconnect that could not reach Redis: (name, connection), retried every second
  // until Redis answers (a release checks the binding, so a late one frees nothing of another's).
  std::set<std::pair<std::string, core::ConnectionId>> orphaned_;
  std::optional<SteadyTime> orphans_retry_at_;
  std::uint64_t next_waiter_id_ = 1;
  // Broker answers that arrive after this object is gone find nobody.
  std::shared_ptr<BrokerLockService*> self_ = std::make_shared<BrokerLockService*>(this);
};

}  // namespace photon::broker
