// photond's command line: `photond serve NAME [flags]`, in the foreground or detached.
#include "common/units.hpp"
#include "daemon/daemon.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

namespace {

using photon::daemon::DaemonOptions;
using photon::daemon::StartupError;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Flags as typed; converted (and checked) after parsing so errors read like usage errors.
struct ServeFlags {
  std::string name;
  bool detach = false;
  std::string idle_timeout = "0";
  std::string log_level = "info";
  std::string max_line_bytes = "1m";
  std::size_t max_json_depth = 64;
  std::size_t max_subscriptions = 4096;
  std::size_t max_connections = 10000;
  std::size_t max_locks = 10000;
  std::size_t max_total_subscriptions = 1000000;
  std::string output_hard_limit = "32m";
  std::string output_soft_limit = "8m";
  std::string output_soft_seconds = "60";
};

DaemonOptions to_options(const ServeFlags& flags) {
  DaemonOptions options;
  options.photon_name = flags.name;
  auto duration = [](const std::string& text, const char* flag) {
    auto value = photon::parse_duration(text);
    if (!value) throw StartupError(kExitUsage, std::string(flag) + ": invalid duration \"" + text + "\" (e.g. 30s, 10m)");
    return *value;
  };
  auto bytes = [](const std::string& text, const char* flag) {
    auto value = photon::parse_bytes(text);
    if (!value || *value == 0) throw StartupError(kExitUsage, std::string(flag) + ": invalid size \"" + text + "\" (e.g. 1048576, 64k, 8m)");
    return *value;
  };
  options.idle_timeout = duration(flags.idle_timeout, "--idle-timeout");
  options.log_level = spdlog::level::from_str(flags.log_level);
  if (options.log_level == spdlog::level::off && flags.log_level != "off") {
    throw StartupError(kExitUsage, "--log-level: unknown level \"" + flags.log_level + "\"");
  }
  options.server_limits.max_line_bytes = bytes(flags.max_line_bytes, "--max-line-bytes");
  options.server_limits.max_connections = flags.max_connections;
  options.server_limits.output.hard_bytes = bytes(flags.output_hard_limit, "--output-hard-limit");
  options.server_limits.output.soft_bytes = bytes(flags.output_soft_limit, "--output-soft-limit");
  options.server_limits.output.soft_duration = duration(flags.output_soft_seconds, "--output-soft-seconds");
  options.max_json_depth = flags.max_json_depth;
  options.max_subscriptions = flags.max_subscriptions;
  options.max_locks = flags.max_locks;
  options.max_total_subscriptions = flags.max_total_subscriptions;
  return options;
}

void redirect_stdio_to_null() {
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  ::dup2(null, STDIN_FILENO);
  ::dup2(null, STDOUT_FILENO);
  ::dup2(null, STDERR_FILENO);
  ::close(null);
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t count = ::write(fd, text.data() + done, text.size() - done);
    if (count <= 0) return;
    done += static_cast<std::size_t>(count);
  }
}

int serve_foreground(const DaemonOptions& options) {
  try {
    photon::daemon::run_daemon(options, [] {});
    return 0;
  } catch (const StartupError& error) {
    std::cerr << "photond: " << error.what() << "\n";
    return error.exit_code();
  } catch (const std::exception& error) {
    std::cerr << "photond: " << error.what() << "\n";
    return kExitFailure;
  }
}

// Forks twice (so the daemon is no child of the caller's session), and returns in the original
// process once the daemon accepts connections or has failed to start. The daemon reports over a
// pipe: "ready PID", or "CODE MESSAGE" on failure.
int serve_detached(DaemonOptions options) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    std::perror("photond: pipe");
    return kExitFailure;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("photond: fork");
    return kExitFailure;
  }
  if (child > 0) {
    ::close(report[1]);
    std::string text;
    char buffer[512];
    ssize_t count = 0;
    while ((count = ::read(report[0], buffer, sizeof buffer)) > 0) text.append(buffer, count);
    ::close(report[0]);
    ::waitpid(child, nullptr, 0);
    if (text.rfind("ready ", 0) == 0) return 0;
    if (text.empty()) {
      std::cerr << "photond: the daemon exited before it was ready\n";
      return kExitFailure;
    }
    const auto space = text.find(' ');
    std::cerr << "photond: " << text.substr(space + 1) << "\n";
    return std::atoi(text.substr(0, space).c_str());
  }
  ::close(report[0]);
  ::setsid();
  if (::fork() != 0) ::_exit(0);
  redirect_stdio_to_null();
  options.log_to_stderr = false;
  try {
    photon::daemon::run_daemon(options, [&] {
      write_all(report[1], "ready " + std::to_string(::getpid()) + "\n");
      ::close(report[1]);
      report[1] = -1;  // the number may be reused (by a client socket) from now on
    });
    return 0;
  } catch (const StartupError& error) {
    if (report[1] >= 0) write_all(report[1], std::to_string(error.exit_code()) + " " + error.what());
    return error.exit_code();
  } catch (const std::exception& error) {
    if (report[1] >= 0) write_all(report[1], std::to_string(kExitFailure) + " " + error.what());
    return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"photond: the local daemon of a photon (pub/sub channels over a Unix socket)"};
  app.set_version_flag("--version", std::string("photond ") + PHOTON_VERSION);
  app.require_subcommand(1);

  ServeFlags flags;
  CLI::App* serve = app.add_subcommand(
      "serve", "Run the daemon of photon NAME on $PHOTON_DIR/daemons/NAME.sock");
  serve->add_option("name", flags.name, "Photon name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}")->required();
  serve->add_flag("--detach", flags.detach, "Run in the background; return once the socket answers");
  serve->add_option("--idle-timeout", flags.idle_timeout,
                    "Exit after this long with no client connected and no lock held (e.g. 30s, 10m); 0 = never")
      ->capture_default_str();
  serve->add_option("--log-level", flags.log_level,
                    "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  serve->add_option("--max-line-bytes", flags.max_line_bytes,
                    "Longest request line; a longer one closes the connection")
      ->capture_default_str();
  serve->add_option("--max-json-depth", flags.max_json_depth, "Deepest JSON nesting accepted")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  serve->add_option("--max-subscriptions", flags.max_subscriptions, "Subscriptions per connection")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-connections", flags.max_connections, "Connections open at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-total-subscriptions", flags.max_total_subscriptions,
                    "Subscriptions of all connections together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-locks", flags.max_locks, "Locks held at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--output-hard-limit", flags.output_hard_limit,
                    "Queued output that closes a connection at once")
      ->capture_default_str();
  serve->add_option("--output-soft-limit", flags.output_soft_limit,
                    "Queued output that closes a connection when held --output-soft-seconds")
      ->capture_default_str();
  serve->add_option("--output-soft-seconds", flags.output_soft_seconds,
                    "How long output may stay over the soft limit")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : kExitUsage;
  }

  DaemonOptions options;
  try {
    options = to_options(flags);
  } catch (const StartupError& error) {
    std::cerr << "photond: " << error.what() << "\n";
    return error.exit_code();
  }
  return flags.detach ? serve_detached(std::move(options)) : serve_foreground(options);
}
