// The photond process for one photon: files under $PHOTON_DIR, the single-instance lock, logging,
// signals, the idle timeout, and the wiring of transport, dispatcher and services.
#pragma once

#include "broker/redis_url.hpp"
#include "common/clock.hpp"
#include "common/defaults.hpp"
#include "common/manual_clock.hpp"
#include "common/paths.hpp"
#include "common/private_dir.hpp"
#include "daemon/dispatcher.hpp"
#include "methods/method_host.hpp"
#include "net/http_server.hpp"
#include "net/unix_server.hpp"
#include "webhooks/webhooks.hpp"

#include <spdlog/common.h>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace photon::daemon {

// What a method host is made with: the daemon's loop, clock and files.
struct HostEnvironment {
  boost::asio::io_context& loop;
  const Clock& clock;
  const PhotonPaths& paths;
};
// The webhook endpoint: where it listens, who may call what, and its HTTP limits.
struct WebhookSettings {
  boost::asio::ip::address bind = boost::asio::ip::make_address_v4("127.0.0.1");
  std::uint16_t port = 0;  // 0: any free port (shown in the log and in status)
  core::WebhookOptions options;
  net::HttpLimits limits;
};

// The browser listener (docs/ui.md): always on 127.0.0.1.
struct UiSettings {
  std::uint16_t port = 0;  // 0: any free port (written to NAME.ui, shown in status)
  // Origins allowed besides the listener's own, e.g. "http://localhost:5173".
  std::vector<std::string> allowed_origins;
  net::HttpLimits limits;
  // photon-core's HTTP channel broker at /channels takes this Bearer token (from
  // $PHOTON_CHANNEL_AUTH_TOKEN); empty: /channels is not served.
  std::string channel_token;
};

// Makes the photon's method host once the daemon owns its files; may throw StartupError.
using HostFactory = std::function<std::unique_ptr<core::MethodHost>(HostEnvironment&)>;

struct DaemonOptions {
  std::string photon_name;
  // Exit after this long with nothing going on; zero means never.
  std::chrono::milliseconds idle_timeout{0};
  spdlog::level::level_enum log_level = spdlog::level::info;
  bool log_to_stderr = true;
  std::chrono::milliseconds shutdown_grace{2000};
  net::ServerLimits server_limits;
  std::size_t max_json_depth = defaults::kMaxJsonDepth;
  std::size_t max_subscriptions = defaults::kMaxSubscriptions;
  std::size_t max_locks = defaults::kMaxLocks;
  std::size_t max_total_subscriptions = defaults::kMaxTotalSubscriptions;
  // The replay window (docs/protocol.md, "Resuming"): messages and bytes kept in all channels.
  std::size_t replay_messages = defaults::kReplayMessages;
  std::size_t replay_bytes = defaults::kReplayBytes;
  // ... in one channel, and for how long (zero: no age bound).
  std::size_t replay_channel_messages = defaults::kReplayChannelMessages;
  std::size_t replay_channel_bytes = defaults::kReplayChannelBytes;
  std::chrono::milliseconds replay_age = defaults::kReplayAge;
  // The photon's methods; none (`command` is refused) when empty.
  HostFactory make_host;
  // Cron jobs the photon declares (manifest or C++), present from start.
  std::vector<core::JobSpec> declared_jobs;
  std::chrono::seconds missed_after = defaults::kMissedAfter;
  // The webhook endpoint; off when empty.
  std::optional<WebhookSettings> webhook;
  // The browser listener; off when empty.
  std::optional<UiSettings> ui;
  std::chrono::milliseconds prompt_timeout = defaults::kPromptTimeout;
  // Join the photon's daemons on other hosts through this Redis (docs/scaling.md); none: alone.
  std::optional<broker::RedisUrl> broker;
  // With the broker: photon-core's Redis channels under this prefix are bridged both ways
  // (docs/scaling.md, "Sharing channels with TypeScript photons"); empty: not bridged.
  std::string photon_core_prefix;
  // Persistent channels (--persist): channels or patterns whose messages are kept in the daemon's
  // database, so that subscribers resume across a restart or a crash (docs/channels.md).
  std::vector<std::string> persist;
  // A test build's --test-clock (docs/testing.md): time moves only when `test_clock` requests
  // move it, from the real time or from `test_clock_start` on the wall clock.
  bool test_clock = false;
  std::optional<std::chrono::system_clock::time_point> test_clock_start;
};

// A failure before the daemon is serving, with the process exit code it calls for
// (1: refused or failed, 2: bad usage).
class StartupError : public std::runtime_error {
 public:
  StartupError(int exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

class StoredJobs;

// The running daemon of one photon: its loop, transport, services and dispatcher, its timers (the
// services' deadlines, the idle timeout, the shutdown grace) on the clock it is given. run_daemon
// makes one with the system clock; tests make one with a fake clock and drive it in process.
// Thread rule: the thread that calls run() (or, in tests, drives loop()) only.
class Daemon {
 public:
  // Makes the services and the transport (nothing listens yet). `dir` (the checked daemons
  // directory), `paths`, `options` and `clock` must outlive the daemon; `token_mark` is the
  // fencing-token mark on disk; `jobs` is the job store (opened or not); `inherited_listener` a
  // listening socket systemd passed; `test_clock`, when not null, is `clock` itself, which
  // `test_clock` requests then move (deadlines wait for those moves, not for real time). Throws
  // StartupError for an unusable configuration.
  Daemon(const DaemonOptions& options, const Clock& clock, const PrivateDir& dir,
         const PhotonPaths& paths, std::uint64_t token_mark, std::unique_ptr<StoredJobs> jobs,
         std::optional<int> inherited_listener, ManualClock* test_clock = nullptr);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Jobs as the store kept them, then the photon's own; throws StartupError for a bad declaration.
  void load_jobs();
  // Listens on the socket, the webhook endpoint and the browser listener that are configured;
  // throws StartupError (leaving no socket file) when one cannot listen.
  void listen();
  // Serves until SIGTERM, SIGINT, a `shutdown` request or the idle timeout.
  void run();
  // Removes the socket file (unless systemd's) and the browser listener's file.
  void remove_files();
  // Calls still running once the loop has stopped (methods that ignored cancellation).
  std::size_t stuck_calls() const;
  // Writes queued job records now.
  void flush_jobs();

  // For in-process use: what serves the Unix socket's connections (open, lines, close)...
  net::PeerHandler& connections();
  // ...the loop the daemon's work is posted to (poll it to run what is ready)...
  boost::asio::io_context& loop();
  // ...and what the loop's timers do when the clock reaches a deadline: the services do what is
  // due, and the idle timeout shuts the daemon down if its time has come (a fake clock moved by a
  // test reaches deadlines that no timer of the loop waits for).
  void check_deadlines();
  // Whether a shutdown has begun (a `shutdown` request, a signal, the idle timeout).
  bool stopping() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs the daemon on the calling thread until SIGTERM, SIGINT, a `shutdown` request or the idle
// timeout; then cleans up its socket and pid file. `on_ready` runs once the socket accepts
// connections. Throws StartupError when the daemon cannot start (already running, bad name,
// unusable directory); nothing is left behind in that case.
void run_daemon(const DaemonOptions& options, const std::function<void()>& on_ready);

}  // namespace photon::daemon
