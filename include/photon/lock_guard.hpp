// photon::LockGuard: a named lock held for a scope, its lease renewed in the background, released
// when the guard goes away.
#pragma once

#include "photon/client.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

namespace photon {

// Owns a lease on a named lock from acquire() until release() or destruction.
//
// Like std::unique_lock with try_to_lock, a guard may own nothing: test it (operator bool) after
// acquire(); result() then says who holds the lock and why it was refused.
//
// While it owns the lock, a background thread renews the lease every ttl/3 over the guard's own
// connection, so the guard never touches a Client of the caller. The holder is the guard's
// session: ClientOptions::session_id when given (guards sharing one are one holder and re-enter
// each other's lock), else a session of this guard alone ("<default_session_id()>/g<N>"), so two
// guards exclude each other also within one process.
//
// Renewals are Client::renew_lock with the guard's token: once the lease has ended they never
// take the lock again. The lease is lost when a renewal is refused (the lease ran out: the lock is
// free, another session's, or the same session's under a newer token), fails (connection closed,
// daemon restarted) or gets no answer before the lease ends by the guard's conservative reckoning
// (ttl from the moment the last granted request was sent). lost() is then true for good and the
// renewals stop; the guard still owns its (now stale) lease until release(). A lease alone never
// guarantees exclusion: pass token() to the protected resource and let it refuse older tokens
// (docs/locks.md).
//
// Thread rule: one thread at a time uses a guard, as with Client. The renewal thread is internal;
// it blocks every signal, so signals go to the application's threads.
class LockGuard {
 public:
  // Acquires `lock_name` from photon `photon_name`'s daemon (or the one listening on `socket`)
  // over a new connection, waiting up to options.wait when another session holds it. Returns a
  // guard that owns the lock, or one that owns nothing when the lock was refused or the wait ran
  // out. A wait is followed by one renewal, so the lease is reckoned from a known instant (if the
  // lease ended before that renewal, the guard owns nothing and result() says so).
  // Throws what Client::connect and Client::acquire_lock throw: ClientError (kNotRunning,
  // kRefused for an invalid request, kTimeout, ...), std::invalid_argument for a bad photon name.
  static LockGuard acquire(std::string_view photon_name, std::string_view lock_name,
                           LockOptions options = {}, ClientOptions client_options = {});
  static LockGuard acquire_socket(const std::filesystem::path& socket, std::string_view lock_name,
                                  LockOptions options = {}, ClientOptions client_options = {});

  // A guard that owns nothing.
  LockGuard();
  LockGuard(LockGuard&& other) noexcept;
  // Releases the lock this guard owns (as the destructor does), then takes over `other`'s.
  LockGuard& operator=(LockGuard&& other) noexcept;
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
  // Releases as release() does. Never throws; returns within the client timeout.
  ~LockGuard();

  // True from a successful acquire() until release() or destruction, also after the lease was
  // lost (see lost()).
  bool owns_lock() const { return state_ != nullptr; }
  explicit operator bool() const { return owns_lock(); }

  // The answer to the acquire: name, holder (this guard's session), token, times. For a guard
  // that owns nothing: the refusal (the holder that has the lock, reason); empty when moved from.
  const LockResult& result() const { return result_; }
  // The fencing token of the lease acquired (also after release()); 0 when the acquire was refused.
  std::uint64_t token() const { return result_.token; }

  // True once the lease the guard owns is known to be lost (see above); false when it owns nothing.
  bool lost() const;

  // Stops the renewals and releases the lock now; the guard then owns nothing. Returns the
  // daemon's answer, or not released with the reason when the guard owned nothing, the daemon
  // could not be reached, or the client timeout ran out (the lease then ends by itself, or with the
  // connection when release_on_disconnect was asked). Never throws; returns within the client
  // timeout, also when a renewal is in flight.
  LockRelease release();

 private:
  struct State;

  static LockGuard acquire_with(Client client, std::string_view lock_name, LockOptions options);

  LockResult result_;
  std::unique_ptr<State> state_;
};

}  // namespace photon
