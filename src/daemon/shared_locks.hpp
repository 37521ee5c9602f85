// Locks held in the broker (Redis) instead of this daemon's table, so exclusion holds across the
// daemons of a photon on several hosts: the same requests and replies as local locks, answered when
// the broker answers; waiting acquires retried on release notifications and at the holder's expiry.
#pragma once

#include "broker/broker.hpp"
#include "common/clock.hpp"
#include "locks/lock_table.hpp"
#include "locks/token_mark.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

namespace photon::daemon {

// One `lock` request as the dispatcher read it.
struct SharedLockCall {
  core::ConnectionId connection = 0;
  std::string id;
  std::string name;
  std::string holder;
  std::chrono::milliseconds lease{30'000};
  std::chrono::milliseconds wait{0};
  bool release_on_disconnect = false;
};

// Invariants: a waiter is in waiters_ and in by_name_ under its lock's name until it is answered
// or its connection closes; at most one broker request per waiter is in flight (its grant waiting
// for the token mark counts as in flight); no reply carries a token above tokens_.durable().
// Thread rule: the event loop thread only.
class SharedLocks {
 public:
  // Queues `line` to connection `connection`; false when it has closed.
  using Send = std::function<bool(core::ConnectionId connection, const std::string& line)>;

  // `changed` is called after an asynchronous answer changed what next_deadline() says.
  // `tokens` (the daemon's high-water mark) gives the floor of every token asked for, and covers
  // each token on disk before a reply carries it; it outlives this object.
  SharedLocks(const Clock& clock, broker::Broker& broker, core::TokenMark& tokens,
              core::LockLimits limits, Send send, std::function<void()> changed);
  ~SharedLocks();

  void lock(SharedLockCall call);
  void unlock(core::ConnectionId connection, std::string id, std::string name, std::string holder);
  void list(core::ConnectionId connection, std::string id);
  void query(core::ConnectionId connection, std::string id, std::string name);

  // Its waiters leave; the locks it took with releaseOnDisconnect are released.
  void connection_closed(core::ConnectionId connection);
  // A lock was released on some daemon: its waiters here try again at once.
  void lock_released(std::string_view name);
  // Retries waiters whose holder's lease has ended; answers waiters whose wait ran out.
  void expire_due();
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Waiter {
    SharedLockCall call;
    SteadyTime started;
    SteadyTime deadline;
    SteadyTime retry_at;
    bool in_flight = false;
    bool refused_before = false;  // the lock was held by another at an earlier ask
  };

  // Asks the broker for the lock on behalf of `call` (a waiter's, when waiter_id is non-zero).
  void attempt(SharedLockCall call, std::uint64_t waiter_id);
  void answered(SharedLockCall call, std::uint64_t waiter_id,
                const broker::SharedLockResult& result);
  // An acquisition or extension whose token the mark on disk now covers (or could not: `error`).
  void granted(SharedLockCall call, std::uint64_t waiter_id, const broker::SharedLockResult& result,
               const std::optional<std::string>& error);
  // Sends the answer to `call`; a waiter leaves the queue. `granted`: the lock is the caller's;
  // `acquired`: newly (given back if the caller has gone and asked for releaseOnDisconnect).
  void finish(const SharedLockCall& call, std::uint64_t waiter_id, bool granted,
              const std::string& line, bool acquired = false);
  void remove_waiter(std::uint64_t waiter_id);
  // Releases (name, holder) for a connection that has gone; kept for a retry if Redis is away.
  void release_orphan(std::string name, std::string holder);
  std::size_t waiters_of(core::ConnectionId connection) const;

  const Clock& clock_;
  broker::Broker& broker_;
  core::TokenMark& tokens_;
  core::LockLimits limits_;
  Send send_;
  std::function<void()> changed_;
  std::map<std::uint64_t, Waiter> waiters_;
  std::unordered_map<std::string, std::set<std::uint64_t>> by_name_;
  std::unordered_map<core::ConnectionId, std::set<std::uint64_t>> by_connection_;
  // Locks taken with releaseOnDisconnect, per connection: (name, holder).
  std::unordered_map<core::ConnectionId, std::set<std::pair<std::string, std::string>>> bound_;
  // Releases on disconnect that could not reach Redis: (name, holder), retried every second
  // until Redis answers (a release checks the holder, so a late one frees nothing of another's).
  std::set<std::pair<std::string, std::string>> orphaned_;
  std::optional<SteadyTime> orphans_retry_at_;
  std::uint64_t next_waiter_id_ = 1;
  // Broker answers that arrive after this object is gone find nobody.
  std::shared_ptr<SharedLocks*> self_ = std::make_shared<SharedLocks*>(this);
};

}  // namespace photon::daemon
