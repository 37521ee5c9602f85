// The photond process for one photon: files under $PHOTON_DIR, the single-instance lock, logging,
// signals, the idle timeout, and the wiring of transport, dispatcher and services.
#pragma once

#include "broker/redis_url.hpp"
#include "common/clock.hpp"
#include "common/paths.hpp"
#include "daemon/dispatcher.hpp"
#include "methods/method_host.hpp"
#include "net/http_server.hpp"
#include "net/unix_server.hpp"
#include "webhooks/webhooks.hpp"

#include <spdlog/common.h>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
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
  std::size_t max_json_depth = 64;
  std::size_t max_subscriptions = 4096;
  std::size_t max_locks = 10'000;
  std::size_t max_total_subscriptions = 1'000'000;
  // The photon's methods; none (`command` is refused) when empty.
  HostFactory make_host;
  // Cron jobs the photon declares (manifest or C++), present from start.
  std::vector<core::JobSpec> declared_jobs;
  std::chrono::seconds missed_after{60};
  // The webhook endpoint; off when empty.
  std::optional<WebhookSettings> webhook;
  // The browser listener; off when empty.
  std::optional<UiSettings> ui;
  std::chrono::milliseconds prompt_timeout{5 * 60 * 1000};
  // Join the photon's daemons on other hosts through this Redis (docs/scaling.md); none: alone.
  std::optional<broker::RedisUrl> broker;
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

// Runs the daemon on the calling thread until SIGTERM, SIGINT, a `shutdown` request or the idle
// timeout; then cleans up its socket and pid file. `on_ready` runs once the socket accepts
// connections. Throws StartupError when the daemon cannot start (already running, bad name,
// unusable directory); nothing is left behind in that case.
void run_daemon(const DaemonOptions& options, const std::function<void()>& on_ready);

}  // namespace photon::daemon
