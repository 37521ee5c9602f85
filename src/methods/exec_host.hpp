// Exec photons: every call of a method runs the program its manifest names as a child process,
// which talks to the daemon through its stdin and stdout (the protocol: docs/methods.md (Exec
// photons)).
#pragma once

#include "methods/manifest.hpp"
#include "methods/method_host.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace photon::core {

struct ExecHostOptions {
  std::string photon_name;       // PHOTON_NAME in the child's environment
  std::filesystem::path socket;  // PHOTON_SOCKET
  std::size_t max_running = 64;  // children at once, all methods together; beyond: kBusy
  // Stdout kept per call: the plain output, and separately any one line. Beyond: the child's
  // process group is killed and the call fails ("output of method M exceeded N bytes").
  std::size_t max_output_bytes = 4u << 20;
  std::chrono::milliseconds kill_grace{2000};  // SIGTERM, then SIGKILL this much later
};

// Runs the methods of a Manifest as child processes, each in its own process group.
//
// A call lives from start() until its main child has been reaped and its stdout and stderr have
// been read to the end; its observer's on_finish comes then, once. A timeout, a cancel_all, a
// prompt from a non-interactive method or too much output decide the outcome early and stop the
// process group (SIGTERM, SIGKILL after kill_grace; SIGKILL at once for too much output). When
// the main child exits, whatever is left of its process group is killed (SIGKILL), so a
// background grandchild holding stdout open cannot keep a call alive; stdout still open
// kill_grace after that (a process that left the group) is abandoned.
//
// Every child is reaped, none blocks the loop: exit is watched through a pidfd (Linux 5.3+; older
// kernels: polled) and the pipes are non-blocking. Writing to a child's stdin needs SIGPIPE
// ignored; the constructor ignores it when its disposition is the default (children get the
// default back).
//
// Thread rule: the event loop thread only, for every member and for the observers' calls.
class ExecHost final : public MethodHost {
 public:
  ExecHost(boost::asio::io_context& loop, Manifest manifest, ExecHostOptions options);
  // Kills (SIGKILL, whole process group) and reaps every child still running, blocking for as
  // long as that takes. The observers of calls still running hear nothing more, nor does a
  // pending cancel_all's `done`: call cancel_all first for an orderly stop. Not from inside an
  // observer's callback.
  ~ExecHost() override;
  ExecHost(const ExecHost&) = delete;
  ExecHost& operator=(const ExecHost&) = delete;

  const std::vector<MethodInfo>& methods() const override { return infos_; }

  // Spawns the method's child, or refuses (posted, never inside start): kFailed for an unknown
  // method or a program that cannot be started, kBusy past max_concurrent or max_running,
  // kCancelled once cancel_all was called.
  void start(CallRequest request, std::shared_ptr<CallObserver> observer) override;

  // running: calls whose child runs or whose output is still being read; sessions: 0.
  HostStats stats() const override;

  // Stops every call (outcome kCancelled) and refuses new ones; `done` is posted once nothing
  // runs (at once when nothing does).
  void cancel_all(std::function<void()> done) override;

  const Manifest& manifest() const { return manifest_; }

 private:
  class Call;

  // Delivers `outcome` to `observer` from a posted handler, unless this host is gone by then.
  void post_outcome(std::shared_ptr<CallObserver> observer, CallOutcome outcome);
  // A Call is over: bookkeeping, then its observer, then any cancel_all waiting for it.
  void call_finished(Call& call, CallOutcome outcome);
  void post_done_if_idle();

  boost::asio::io_context& loop_;
  Manifest manifest_;
  ExecHostOptions options_;
  std::vector<MethodInfo> infos_;                         // manifest_.methods' infos
  std::unordered_map<std::string, std::size_t> by_name_;  // index into manifest_.methods
  std::vector<std::size_t> running_per_method_;           // same index
  std::map<std::uint64_t, std::shared_ptr<Call>> calls_;  // running calls by id
  std::uint64_t next_call_id_ = 1;
  bool cancelling_ = false;
  std::vector<std::function<void()>> on_idle_;  // cancel_all callbacks waiting for calls_ empty
  // Posted handlers hold a weak reference: nothing is delivered once the host is gone.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace photon::core
