// LockGuard: acquiring a lock for a scope, renewing its lease on a thread of its own, releasing it
// within a bounded time.
#include "photon/lock_guard.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace photon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The guard's holder: the session asked for, else one of this guard alone.
std::string guard_session(const ClientOptions& options) {
  if (!options.session_id.empty()) return options.session_id;
  static std::atomic<std::uint64_t> next_guard{1};
  return default_session_id() + "/g" + std::to_string(next_guard.fetch_add(1));
}

// Starts `body` on a thread that blocks every signal. The mask is set before the thread exists,
// so no signal can reach it in between.
std::thread start_signal_free_thread(std::function<void()> body) {
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  std::thread thread;
  try {
    thread = std::thread(std::move(body));
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

}  // namespace

// The lease, shared by the guard's owner and the renewal thread.
// Invariants: while `renewer` runs only it uses `client` and `granted_from`; the owner uses them
// again only after joining it. The daemon's lease surely runs until granted_from + options.ttl:
// it began no earlier than the moment the last granted request was sent.
struct LockGuard::State {
  State(Client client_in, std::string name_in, LockOptions options_in, Clock::time_point sent,
        std::uint64_t token_in)
      : client(std::move(client_in)),
        name(std::move(name_in)),
        options(options_in),
        timeout(client.timeout()),
        token(token_in),
        granted_from(sent) {}

  // The renewal thread: renews every ttl/3 until stopped or the lease is lost.
  void renew_until_stopped();
  // One renewal; false (and `lost` set) when the lease is lost.
  bool renew_once();

  Client client;
  const std::string name;
  const LockOptions options;   // options.wait is 0: a renewal never waits
  const milliseconds timeout;  // the client's timeout as the caller set it
  const std::uint64_t token;
  Clock::time_point granted_from;
  std::atomic<bool> lost{false};

  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;  // guarded by mutex
  std::thread renewer;
};

void LockGuard::State::renew_until_stopped() {
  const milliseconds period = std::max(options.ttl / 3, milliseconds(1));
  std::unique_lock lock(mutex);
  for (;;) {
    if (wake.wait_until(lock, granted_from + period, [this] { return stopping; })) return;
    lock.unlock();
    const bool renewed = renew_once();
    lock.lock();
    if (!renewed) return;
  }
}

bool LockGuard::State::renew_once() {
  const auto sent = Clock::now();
  // No answer by the end of the lease is as good as a refusal: wait no longer than that.
  const auto left = std::chrono::duration_cast<milliseconds>(granted_from + options.ttl - sent);
  if (left.count() > 0) {
    client.set_timeout(std::min(timeout, left));
    try {
      // Only the lease under this token is renewed: once it has ended the lock is never taken
      // again behind the owner's back (whoever relied on the old token may have been overrun).
      // Granted means extended under this very token (renew_lock checks the reply).
      if (client.renew_lock(name, token, options).acquired) {
        granted_from = sent;
        return true;
      }
    } catch (...) {
      // The connection failed or no answer came in time: the lease cannot be vouched for.
    }
  }
  lost.store(true);
  return false;
}

LockGuard LockGuard::acquire(std::string_view photon_name, std::string_view lock_name,
                             LockOptions options, ClientOptions client_options) {
  client_options.session_id = guard_session(client_options);
  return acquire_with(Client::connect(photon_name, std::move(client_options)), lock_name, options);
}

LockGuard LockGuard::acquire_socket(const std::filesystem::path& socket, std::string_view lock_name,
                                    LockOptions options, ClientOptions client_options) {
  client_options.session_id = guard_session(client_options);
  return acquire_with(Client::connect_socket(socket, std::move(client_options)), lock_name,
                      options);
}

LockGuard LockGuard::acquire_with(Client client, std::string_view lock_name, LockOptions options) {
  LockGuard guard;
  auto sent = Clock::now();
  guard.result_ = client.acquire_lock(lock_name, options);
  if (!guard.result_.acquired) return guard;
  const bool waited = options.wait.count() > 0;
  options.wait = milliseconds(0);
  bool vouched = true;
  if (waited) {
    // The lease began when the daemon granted it, at some moment of the wait: renew it once so
    // that it is reckoned from a known instant.
    sent = Clock::now();
    try {
      LockResult renewal = client.renew_lock(lock_name, guard.result_.token, options);
      // Refused: the lease ended before the renewal (the lock is free or someone else's now),
      // and the guard owns nothing.
      if (!renewal.acquired) {
        guard.result_ = std::move(renewal);
        return guard;
      }
    } catch (const ClientError&) {
      // The daemon went away right after granting the lock, or predates renewToken: the guard
      // holds it, but as lost.
      vouched = false;
    }
  }
  guard.state_ = std::make_unique<State>(std::move(client), std::string(lock_name), options, sent,
                                         guard.result_.token);
  State* state = guard.state_.get();
  if (!vouched) {
    state->lost.store(true);
    return guard;
  }
  state->renewer = start_signal_free_thread([state] { state->renew_until_stopped(); });
  return guard;
}

LockGuard::LockGuard() = default;

LockGuard::LockGuard(LockGuard&& other) noexcept
    : result_(std::exchange(other.result_, LockResult{})), state_(std::move(other.state_)) {}

LockGuard& LockGuard::operator=(LockGuard&& other) noexcept {
  if (this == &other) return *this;
  if (state_) {
    try {
      release();
    } catch (...) {
    }
  }
  result_ = std::exchange(other.result_, LockResult{});
  state_ = std::move(other.state_);
  return *this;
}

LockGuard::~LockGuard() {
  if (!state_) return;
  try {
    release();
  } catch (...) {
  }
}

bool LockGuard::lost() const { return state_ != nullptr && state_->lost.load(); }

LockRelease LockGuard::release() {
  if (!state_) return {.released = false, .reason = "the guard owns no lock"};
  // The whole release, including a renewal still in flight, fits in the client timeout.
  std::unique_ptr<State> state = std::move(state_);
  const auto start = Clock::now();
  {
    std::lock_guard lock(state->mutex);
    state->stopping = true;
  }
  state->wake.notify_all();
  if (state->renewer.joinable()) state->renewer.join();

  LockRelease released;
  try {
    const auto left =
        state->timeout - std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    if (left.count() <= 0) {
      released.reason = "the client timeout ran out before the lock could be released";
    } else {
      state->client.set_timeout(left);
      released = state->client.release_lock(state->name);
    }
  } catch (const std::exception& error) {
    released = {.released = false, .reason = error.what()};
  }
  return released;
}

}  // namespace photon
