// What the daemon asks of its locks, whoever keeps them: this daemon's table
// (locks/local_lock_service.hpp) or the broker shared by the daemons of a photon
// (broker/broker_lock_service.hpp). Answers are values; the protocol layer writes the replies.
#pragma once

#include "locks/lock_table.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace photon::core {

// A lock, or nothing when it is free; or why the lock service could not say.
struct LockQueryResult {
  std::optional<LockView> lock;
  std::optional<std::string> unavailable;
};

// Every held lock sorted by name; or why the lock service could not say.
struct LockListResult {
  std::vector<LockView> locks;
  std::optional<std::string> unavailable;
};

// The answer to an acquire: granted (kAcquired, kExtended) or refused, never kQueued. Returns
// whether the caller heard it: false when its connection has closed (a lock it asked to bind to
// that connection is then given back).
using LockDone = std::function<bool(const LockResult&)>;
using ReleaseDone = std::function<void(const ReleaseResult&)>;
using QueryDone = std::function<void(const LockQueryResult&)>;
using ListDone = std::function<void(const LockListResult&)>;

// Each call's `done` runs exactly once: inside the call when the answer is known at once (always,
// for a local service, but for a queued acquire), or later on the event loop thread (a waiter
// granted or timed out, a broker's answer). A `done` that runs later must not assume the caller's
// connection is still open.
// Thread rule: the event loop thread only.
class LockService {
 public:
  virtual ~LockService() = default;

  // Acquires, extends, refuses or queues (then answers when granted or when the wait runs out).
  virtual void acquire(const LockRequest& request, LockDone done) = 0;
  // Releases the lock when `holder` holds it (kHeldByOther names the holder; kNotHeld when free).
  virtual void release(ConnectionId connection, std::string_view name, std::string_view holder,
                       ReleaseDone done) = 0;
  virtual void query(std::string_view name, QueryDone done) = 0;
  virtual void list(ListDone done) = 0;

  // The connection closed: its waiters leave without an answer, and the locks it bound with
  // release_on_disconnect are released.
  virtual void connection_closed(ConnectionId connection) = 0;
  // Does what is due by the clock (frees ended leases, ends waits, retries); then
  // next_deadline() says when it is next needed (nothing: not until another call).
  virtual void expire_due() = 0;
  virtual std::optional<std::chrono::steady_clock::time_point> next_deadline() const = 0;

  // The locks held through this daemon (`status` shows it; the idle timeout waits for none).
  virtual std::size_t held() const = 0;
};

}  // namespace photon::core
