// Named locks with leases: exclusive holders, exact expiry on the monotonic clock, fencing tokens,
// first-come-first-served waiters, and locks bound to a connection's life.
#pragma once

#include "common/clock.hpp"
#include "common/refusal.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace photon::core {

// Identifies a client connection to the services without their knowing what a connection is.
using ConnectionId = std::uint64_t;

// The largest fencing token: the largest integer a JavaScript number holds exactly, so every
// client reads every token exactly. No daemon hands out a token above it.
inline constexpr std::uint64_t kMaxFencingToken = (std::uint64_t{1} << 53) - 1;

// Hands out fencing tokens, each greater than every one before, also across restarts: it persists
// a high-water mark before issuing a token above it.
class TokenAllocator {
 public:
  // Persists "no token up to `mark` may be issued again"; returns an error message on failure.
  using Persist = std::function<std::optional<std::string>(std::uint64_t mark)>;

  // `issued_up_to`: the mark persisted by the previous run (0 for none). Tokens are reserved
  // `block` at a time, so a restart skips at most block - 1 numbers.
  TokenAllocator(std::uint64_t issued_up_to, Persist persist, std::uint64_t block = 1000)
      : last_(issued_up_to), reserved_(issued_up_to), persist_(std::move(persist)), block_(block) {}

  // The next token, or the error that kept the new mark from being persisted, or the tokens
  // reaching kMaxFencingToken (no token is issued then).
  struct Next {
    std::uint64_t token = 0;
    std::optional<Refused> error;  // kTokenNotIssued (why) or kTokensExhausted
  };
  Next next();

 private:
  std::uint64_t last_;
  std::uint64_t reserved_;
  Persist persist_;
  std::uint64_t block_;
};

// A held lock as clients see it.
struct LockView {
  std::string name;
  std::string holder;
  std::chrono::system_clock::time_point acquired_at;
  std::chrono::system_clock::time_point expires_at;  // wall-clock view of the steady deadline
  std::uint64_t token = 0;
  std::size_t waiters = 0;
};

struct LockRequest {
  std::string_view name;
  std::string_view holder;
  std::chrono::milliseconds lease{30'000};
  std::chrono::milliseconds wait{0};  // zero: refuse at once when held
  bool release_on_disconnect = false;
  ConnectionId connection = 0;
  // Non-zero: a renewal, granted only as an extension of the holder's lock under this token;
  // a free lock, another token or another holder is refused (kLeaseEnded) and nothing is taken.
  std::uint64_t renew_token = 0;
};

enum class LockOutcome {
  kAcquired,  // a new acquisition with a new token
  kExtended,  // the holder locked again: lease renewed, same token
  kRefused,   // not granted; LockResult::refusal says why
  kQueued,    // held by another; the request waits and its callback will be called
};

// Why a lock request was not granted. The protocol layer turns each into what the client reads
// (daemon/lock_replies.hpp); the lock services never write a sentence.
enum class LockRefusal : std::uint8_t {
  kNone,
  kHeld,                        // held by another holder (LockResult::lock is theirs)
  kWaitTimedOut,                // a queued request's wait ran out (lock: the other holder's)
  kTooManyLocks,                // LockResult::limit locks are held already
  kTooManyWaiters,              // LockResult::limit requests wait in the daemon already
  kTooManyWaitersOnConnection,  // LockResult::limit requests of its connection wait already
  kTokenNotIssued,              // no fencing token could be issued; LockResult::detail says why
  kTokensExhausted,             // the next token would pass kMaxFencingToken
  kUnavailable,                 // a shared lock service could not answer; detail says why
  kLeaseEnded,  // a renewal whose token the holder no longer holds (LockResult::lock: the lock now)
};

struct LockResult {
  LockOutcome outcome;
  LockView lock;  // the lock's state after the request (refused as held: the other holder's)
  LockRefusal refusal = LockRefusal::kNone;
  std::uint64_t limit = 0;  // for the kTooMany refusals
  std::string detail;       // for kTokenNotIssued and kUnavailable
};

// Called once for a queued request: with kAcquired when granted, kRefused when the wait ran out.
using LockWaitDone = std::function<void(const LockResult&)>;

enum class ReleaseOutcome { kReleased, kNotHeld, kHeldByOther, kUnavailable };

struct ReleaseResult {
  ReleaseOutcome outcome;
  std::string holder;  // for kHeldByOther
  std::string detail;  // for kUnavailable: why the shared lock service could not answer
};

struct LockLimits {
  std::size_t max_locks = 10'000;
  std::size_t max_waiters_per_connection = 1024;
  std::size_t max_waiters = 100'000;  // in the whole daemon
};

// All locks of a daemon.
//
// Every public call first frees the leases that ended by the clock's now, so no caller ever sees an
// expired lock, whatever the timer driving expire_due() is doing. Callbacks of waiters run inside
// the call that granted or timed them out; they must not call back into the table.
// Invariants: a lock in locks_ has a holder and an entry in expiries_ at its deadline; waiters
// exist only on held locks, queued by id (ids increase, so the order is arrival order), and each
// has an entry in wait_deadlines_, waiters_, its connection's set and its lock's holder index;
// tokens only increase. Every operation costs O(log n) in the number of locks and waiters, plus
// the waiters it answers.
// Thread rule: not thread-safe; the event loop thread owns it.
class LockTable {
 public:
  LockTable(const Clock& clock, TokenAllocator& tokens, LockLimits limits = {});

  // Acquires, extends, refuses or queues. `on_done` is kept only when the result is kQueued.
  LockResult acquire(const LockRequest& request, LockWaitDone on_done);

  ReleaseResult release(std::string_view name, std::string_view holder);

  std::optional<LockView> query(std::string_view name);
  // Every held lock, sorted by name.
  std::vector<LockView> list();

  // The connection closed: its waiters leave their queues (without callbacks) and the locks it
  // bound with release_on_disconnect are released.
  void drop_connection(ConnectionId connection);

  // Frees expired leases (granting them to waiters) and ends waits that ran out.
  void expire_due();

  // When expire_due() next has something to do; nothing when no lease or wait is pending.
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const;

  std::size_t size() const { return locks_.size(); }

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  struct Waiter {
    std::uint64_t id;
    std::string holder;
    std::chrono::milliseconds lease;
    bool release_on_disconnect;
    ConnectionId connection;
    SteadyTime deadline;
    LockWaitDone on_done;
  };

  struct Lock {
    std::string holder;
    std::chrono::system_clock::time_point acquired_at;
    SteadyTime expires;
    // The wall-clock view of `expires`, worked out when it was set: every reply about the lease
    // shows the same instant, whenever it is asked and whatever the system clock did since.
    std::chrono::system_clock::time_point expires_at;
    std::uint64_t token;
    std::optional<ConnectionId> bound_to;
    std::map<std::uint64_t, Waiter> waiters;  // by id: first come, first served
    std::unordered_map<std::string, std::set<std::uint64_t>> waiting_holders;  // holder → ids
  };

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };
  using LockMap = std::unordered_map<std::string, Lock, StringHash, std::equal_to<>>;

  // Both clocks read together, so a reply's wall-clock times agree with the lease they describe.
  struct Instant {
    SteadyTime steady;
    std::chrono::system_clock::time_point system;
  };
  Instant now() const { return {clock_.steady(), clock_.system()}; }

  struct WaiterIndex {
    std::string lock_name;
    ConnectionId connection;
  };

  LockView view(const std::string& name, const Lock& lock) const;
  void set_expiry(const std::string& name, Lock& lock, SteadyTime expires, const Instant& at);
  // Moves the lock's release-on-disconnect binding to `connection` (or removes it).
  void bind(const std::string& name, Lock& lock, std::optional<ConnectionId> connection);
  // Takes a waiter out of its lock's queue and all indexes, and returns it.
  Waiter remove_waiter(Lock& lock, std::uint64_t waiter_id);
  // Removes the lock, or hands it to its first waiter (and extends that holder's later waiters).
  void free_lock(LockMap::iterator it);
  void time_out_waiter(std::uint64_t waiter_id);

  const Clock& clock_;
  TokenAllocator& tokens_;
  LockLimits limits_;
  LockMap locks_;
  std::set<std::pair<SteadyTime, std::string>> expiries_;
  std::set<std::pair<SteadyTime, std::uint64_t>> wait_deadlines_;
  std::unordered_map<std::uint64_t, WaiterIndex> waiters_;
  std::unordered_map<ConnectionId, std::set<std::uint64_t>> connection_waiters_;
  std::unordered_map<ConnectionId, std::set<std::string>> bound_;  // release-on-disconnect locks
  std::uint64_t next_waiter_id_ = 1;
};

}  // namespace photon::core
