// The host of a photon written in C++ (include/photon/photon.hpp): one instance of the class per
// session, methods run on a small thread pool, results posted back to the event loop.
#pragma once

#include "common/clock.hpp"
#include "common/defaults.hpp"
#include "methods/method_host.hpp"
#include "photon/photon.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>

namespace photon::core {

struct EmbeddedHostOptions {
  // Threads that run methods. A method waiting for a prompt's answer holds its thread.
  std::size_t threads = defaults::kMethodThreads;
  // A session whose instance has had no call for this long is dropped (its instance destroyed).
  std::chrono::milliseconds session_timeout = defaults::kSessionTimeout;
  // Sessions alive at once; a call that would create one more is refused (kBusy).
  std::size_t max_sessions = 10'000;
};

// Invariants: a session with calls running or queued is never expired; with a non-concurrent
// photon, at most one call per session runs at a time and the others wait in arrival order.
// Thread rule: the public functions on the event loop thread only; methods run on the pool.
class EmbeddedHost final : public MethodHost {
 public:
  EmbeddedHost(boost::asio::any_io_executor loop, const Clock& clock, PhotonDefinition definition,
               EmbeddedHostOptions options);
  // Waits for running methods to return (cancel_all first asks them to stop).
  ~EmbeddedHost() override;

  const std::vector<MethodInfo>& methods() const override { return infos_; }
  void start(CallRequest request, std::shared_ptr<CallObserver> observer) override;
  HostStats stats() const override { return {running_, sessions_.size()}; }
  void cancel_all(std::function<void()> done) override;

  // Drops every idle session older than the session timeout (a timer calls it; tests call it
  // after moving a fake clock).
  void expire_idle_sessions();
  void check_deadlines() override { expire_idle_sessions(); }

 private:
  struct Instance;
  struct Pending {
    CallRequest request;
    std::shared_ptr<CallObserver> observer;
  };
  struct Session {
    std::shared_ptr<Instance> instance;
    std::deque<Pending> queue;
    std::size_t running = 0;
    std::chrono::steady_clock::time_point last_used;
  };
  using SessionMap = std::map<std::string, Session, std::less<>>;

  void run(SessionMap::iterator session, Pending call);
  void finished(const std::string& session_id, const std::shared_ptr<CallObserver>& observer,
                CallOutcome outcome);
  void finish_later(std::shared_ptr<CallObserver> observer, CallOutcome outcome);
  void arm_expiry_timer();
  void check_done();

  boost::asio::any_io_executor loop_;
  const Clock& clock_;
  PhotonDefinition definition_;
  EmbeddedHostOptions options_;
  std::vector<MethodInfo> infos_;
  SessionMap sessions_;
  std::size_t running_ = 0;  // started or queued, not yet finished
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::function<void()> on_idle_after_cancel_;
  boost::asio::steady_timer expiry_timer_;
  boost::asio::thread_pool pool_;
};

}  // namespace photon::core
