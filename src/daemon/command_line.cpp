// The daemon's command line, shared by photond (`photond serve NAME [flags]`) and by programs that
// embed a C++ photon (`PROGRAM [NAME] [flags]`): flags, foreground or detached start.
#include "daemon/command_line.hpp"

#include "broker/redis_broker.hpp"
#include "broker/redis_url.hpp"
#include "common/defaults.hpp"
#include "common/exit_codes.hpp"
#include "common/units.hpp"
#include "daemon/daemon.hpp"
#include "daemon/test_clock.hpp"
#include "methods/embedded_host.hpp"
#include "methods/exec_host.hpp"
#include "methods/manifest.hpp"
#include "protocol/request.hpp"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

// Inside photon::daemon, so that the helpers' names (and this using-directive) stay out of the
// global namespace of a unity batch.
namespace photon::daemon {
namespace {

// How messages name the program: photond, or the embedding program's own name.
std::string program_name = "photond";

// Flags as typed; converted (and checked) after parsing so errors read like usage errors.
struct ServeFlags {
  std::string name;
  bool detach = false;
  std::string idle_timeout = "0";
  std::string log_level = "info";
  std::string max_line_bytes = format_bytes(defaults::kMaxLineBytes);
  std::size_t max_json_depth = defaults::kMaxJsonDepth;
  std::size_t max_subscriptions = defaults::kMaxSubscriptions;
  std::size_t max_connections = defaults::kMaxConnections;
  std::size_t max_locks = defaults::kMaxLocks;
  std::size_t max_total_subscriptions = defaults::kMaxTotalSubscriptions;
  std::size_t replay_messages = defaults::kReplayMessages;
  std::string replay_bytes = format_bytes(defaults::kReplayBytes);
  std::size_t replay_channel_messages = defaults::kReplayChannelMessages;
  std::string replay_channel_bytes = format_bytes(defaults::kReplayChannelBytes);
  std::string replay_age = format_duration(defaults::kReplayAge);
  std::vector<std::string> persist;
  std::string output_hard_limit = format_bytes(defaults::kOutputHardBytes);
  std::string output_soft_limit = format_bytes(defaults::kOutputSoftBytes);
  std::string output_soft_seconds = std::to_string(defaults::kOutputSoftTime.count());
  std::string manifest;
  std::string prompt_timeout = format_duration(defaults::kPromptTimeout);
  std::string missed_after = format_duration(defaults::kMissedAfter);
  std::string webhook_port;  // empty: $PHOTON_WEBHOOK_PORT, else off
  std::string webhook_bind = "127.0.0.1";
  std::string webhook_auth;  // empty: "secret" when $PHOTON_WEBHOOK_SECRET is set, else "none"
  std::vector<std::string> webhook_methods;
  std::vector<std::string> webhook_cors_origins;
  std::string webhook_max_body = format_bytes(defaults::kWebhookMaxBody);
  std::string ui_port;  // empty: $PHOTON_UI_PORT, else off
  std::vector<std::string> ui_allowed_origins;
  std::string session_timeout = format_duration(defaults::kSessionTimeout);
  std::size_t method_threads = defaults::kMethodThreads;
  std::string test_clock;  // empty: the system clock; "now" or an RFC 3339 time: a test clock
  std::string broker;  // empty: $PHOTON_CHANNEL_BROKER=redis with $PHOTON_REDIS_URL or $REDIS_URL,
                       // else none
  // empty: photon-core's channels are not bridged; kPhotonCoreDefault: $PHOTON_REDIS_PREFIX, else
  // photon-core's own default; anything else: that prefix.
  std::string photon_core_channels;
  bool photon_core_http = false;  // serve /channels on the UI listener
};

constexpr std::string_view kPhotonCoreDefault = "default";
constexpr std::size_t kMinChannelTokenBytes = 16;
// The channel token of photon-core's HTTP broker, under the name photon-core reads it by.
constexpr const char* kChannelTokenVariable = "PHOTON_CHANNEL_AUTH_TOKEN";
constexpr std::string_view kPhotonCoreDefaultPrefix = "photon:channel:";

// The Redis broker the flags and the environment ask for, or none (the daemon stands alone).
std::optional<photon::broker::RedisUrl> broker_url(const ServeFlags& flags) {
  std::string text = flags.broker;
  const char* where = "--broker";
  if (text.empty()) {
    const char* kind = std::getenv("PHOTON_CHANNEL_BROKER");
    const std::string broker = kind == nullptr ? "" : kind;
    if (broker.empty() || broker == "daemon" || broker == "local") return std::nullopt;
    if (broker != "redis") {
      throw StartupError(
          kExitUsage,
          "PHOTON_CHANNEL_BROKER=" + broker +
              ": photond joins daemons through \"redis\" only (or \"daemon\" for none)");
    }
    where = "PHOTON_REDIS_URL";
    const char* url = std::getenv("PHOTON_REDIS_URL");
    if (url == nullptr || *url == '\0') {
      where = "REDIS_URL";
      url = std::getenv("REDIS_URL");
    }
    if (url == nullptr || *url == '\0') {
      throw StartupError(kExitUsage,
                         "PHOTON_CHANNEL_BROKER=redis needs PHOTON_REDIS_URL or REDIS_URL");
    }
    text = url;
  }
  auto parsed = photon::broker::parse_redis_url(text);
  if (auto* error = std::get_if<std::string>(&parsed))
    throw StartupError(kExitUsage, std::string(where) + ": " + *error);
  return std::get<photon::broker::RedisUrl>(std::move(parsed));
}

std::optional<photon::daemon::WebhookSettings> webhook_settings(const ServeFlags& flags);
std::optional<photon::daemon::UiSettings> ui_settings(const ServeFlags& flags);

DaemonOptions to_options(const ServeFlags& flags) {
  DaemonOptions options;
  options.photon_name = flags.name;
  auto duration = [](const std::string& text, const char* flag) {
    auto value = photon::parse_duration(text);
    if (!value)
      throw StartupError(kExitUsage,
                         std::string(flag) + ": invalid duration \"" + text + "\" (e.g. 30s, 10m)");
    // Timers add durations to the steady clock's nanoseconds: keep far from overflow.
    if (*value > std::chrono::hours(24 * 365 * 100)) {
      throw StartupError(kExitUsage,
                         std::string(flag) + ": \"" + text + "\" is longer than 100 years");
    }
    return *value;
  };
  auto bytes = [](const std::string& text, const char* flag) {
    auto value = photon::parse_bytes(text);
    if (!value || *value == 0)
      throw StartupError(kExitUsage, std::string(flag) + ": invalid size \"" + text +
                                         "\" (e.g. 1048576, 64k, 8m)");
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
  options.server_limits.output.soft_duration =
      duration(flags.output_soft_seconds, "--output-soft-seconds");
  options.max_json_depth = flags.max_json_depth;
  options.max_subscriptions = flags.max_subscriptions;
  options.max_locks = flags.max_locks;
  options.max_total_subscriptions = flags.max_total_subscriptions;
  options.replay_messages = flags.replay_messages;
  options.replay_bytes = bytes(flags.replay_bytes, "--replay-bytes");
  options.replay_channel_messages = flags.replay_channel_messages;
  options.replay_channel_bytes = bytes(flags.replay_channel_bytes, "--replay-channel-bytes");
  options.replay_age = duration(flags.replay_age, "--replay-age");
  for (const std::string& pattern : flags.persist) {
    if (auto problem = photon::protocol::channel_name_error(pattern, true)) {
      throw StartupError(kExitUsage, "--persist: \"" + pattern + "\": " + *problem);
    }
  }
  options.persist = flags.persist;
  options.prompt_timeout = duration(flags.prompt_timeout, "--prompt-timeout");
  if (options.prompt_timeout.count() == 0) {
    throw StartupError(kExitUsage, "--prompt-timeout: must be more than 0");
  }
  options.missed_after =
      std::chrono::ceil<std::chrono::seconds>(duration(flags.missed_after, "--missed-after"));
  options.webhook = webhook_settings(flags);
  options.ui = ui_settings(flags);
  options.broker = broker_url(flags);
  if (!flags.photon_core_channels.empty()) {
    if (!options.broker) {
      throw StartupError(kExitUsage,
                         "--photon-core-channels: needs --broker (photon-core's channels are in "
                         "Redis)");
    }
    std::string prefix = flags.photon_core_channels;
    if (prefix == kPhotonCoreDefault) {
      const char* from_environment = std::getenv("PHOTON_REDIS_PREFIX");
      prefix = from_environment != nullptr && *from_environment != '\0'
                   ? from_environment
                   : std::string(kPhotonCoreDefaultPrefix);
    }
    if (auto problem = photon::broker::photon_core_prefix_error(prefix, flags.name)) {
      throw StartupError(kExitUsage, "--photon-core-channels: " + *problem);
    }
    options.photon_core_prefix = std::move(prefix);
  }
  if (!flags.test_clock.empty()) {
    options.test_clock = true;
    if (flags.test_clock != "now") {
      options.test_clock_start = photon::daemon::parse_rfc3339(flags.test_clock);
      if (!options.test_clock_start) {
        throw StartupError(kExitUsage,
                           "--test-clock: \"" + flags.test_clock +
                               "\" is not an RFC 3339 time (e.g. 2026-03-08T01:59:00Z)");
      }
    }
  }
  // Exec methods' children inherit the daemon's environment: the secrets leave it now.
  ::unsetenv(std::string(photon::core::kWebhookSecretVariable).c_str());
  if (flags.photon_core_http) ::unsetenv(kChannelTokenVariable);
  for (auto scheme :
       {photon::core::WebhookScheme::kSecret, photon::core::WebhookScheme::kGitHub,
        photon::core::WebhookScheme::kStripe, photon::core::WebhookScheme::kStandard}) {
    ::unsetenv(photon::core::webhook_secret_variable(scheme).c_str());
  }
  if (options.missed_after.count() == 0) {
    throw StartupError(kExitUsage, "--missed-after: must be at least 1s");
  }
  return options;
}

// The environment variable `name`, or empty.
std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// The browser listener the flags and the environment ask for, or none.
std::optional<photon::daemon::UiSettings> ui_settings(const ServeFlags& flags) {
  const std::string port_text = flags.ui_port.empty() ? env("PHOTON_UI_PORT") : flags.ui_port;
  if (port_text.empty()) {
    if (flags.photon_core_http) {
      throw StartupError(kExitUsage,
                         "--photon-core-http: needs --ui-port (/channels is on the UI listener)");
    }
    return std::nullopt;
  }
  photon::daemon::UiSettings settings;
  unsigned long port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    throw StartupError(kExitUsage,
                       "--ui-port: \"" + port_text + "\" is not a port number (0-65535)");
  }
  settings.port = static_cast<std::uint16_t>(port);
  for (const std::string& origin : flags.ui_allowed_origins) {
    const bool printable = std::all_of(origin.begin(), origin.end(),
                                       [](unsigned char c) { return c > 0x20 && c < 0x7f; });
    if (!printable || !(origin.starts_with("http://") || origin.starts_with("https://")) ||
        origin.ends_with("/")) {
      throw StartupError(kExitUsage, "--ui-allow-origin: \"" + origin +
                                         "\" is not an origin (scheme://host[:port], no path)");
    }
  }
  settings.allowed_origins = flags.ui_allowed_origins;
  if (flags.photon_core_http) {
    // A secret, so from the environment only (a flag would show it in `ps`), as photon-core's
    // HttpBroker reads it.
    settings.channel_token = env(kChannelTokenVariable);
    if (settings.channel_token.size() < kMinChannelTokenBytes) {
      throw StartupError(kExitUsage,
                         "--photon-core-http: set PHOTON_CHANNEL_AUTH_TOKEN to a token of at "
                         "least " +
                             std::to_string(kMinChannelTokenBytes) +
                             " characters (for example: openssl rand -hex 32)");
    }
  }
  return settings;
}

// The webhook endpoint the flags and the environment ask for, or none.
std::optional<photon::daemon::WebhookSettings> webhook_settings(const ServeFlags& flags) {
  using photon::core::WebhookScheme;
  const std::string port_text =
      flags.webhook_port.empty() ? env("PHOTON_WEBHOOK_PORT") : flags.webhook_port;
  if (port_text.empty()) return std::nullopt;
  photon::daemon::WebhookSettings settings;
  char* end = nullptr;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (end == port_text.c_str() || *end != '\0' || port > 65535) {
    throw StartupError(kExitUsage,
                       "--webhook-port: \"" + port_text + "\" is not a port number (0-65535)");
  }
  settings.port = static_cast<std::uint16_t>(port);
  boost::system::error_code ec;
  settings.bind = boost::asio::ip::make_address(flags.webhook_bind, ec);
  if (ec)
    throw StartupError(kExitUsage,
                       "--webhook-bind: \"" + flags.webhook_bind + "\" is not an IP address");

  // Secrets come from the environment only: a flag would show them in `ps`.
  const std::string shared = env(std::string(photon::core::kWebhookSecretVariable).c_str());
  for (WebhookScheme scheme : {WebhookScheme::kSecret, WebhookScheme::kGitHub,
                               WebhookScheme::kStripe, WebhookScheme::kStandard}) {
    std::string secret = photon::core::webhook_secret_from_environment(scheme);
    if (!secret.empty()) settings.options.secrets[scheme] = std::move(secret);
  }
  const std::string auth =
      !flags.webhook_auth.empty() ? flags.webhook_auth : (shared.empty() ? "none" : "secret");
  auto scheme = photon::core::webhook_scheme_from_name(auth);
  if (!scheme) {
    throw StartupError(kExitUsage, "--webhook-auth: \"" + auth +
                                       "\" is not one of none, secret, github, stripe, standard");
  }
  settings.options.scheme = *scheme;
  // Anyone who can reach a non-loopback address could call any method: refuse that.
  if (!settings.bind.is_loopback() && *scheme == WebhookScheme::kNone) {
    throw StartupError(kExitUsage,
                       "refusing to serve webhooks on " + flags.webhook_bind +
                           " without authentication: set PHOTON_WEBHOOK_SECRET or --webhook-auth");
  }
  for (const std::string& method : flags.webhook_methods)
    settings.options.allowed_methods.insert(method);
  if (!flags.webhook_cors_origins.empty())
    settings.options.cors_origins = flags.webhook_cors_origins;
  auto max_body = photon::parse_bytes(flags.webhook_max_body);
  if (!max_body || *max_body == 0) {
    throw StartupError(kExitUsage,
                       "--webhook-max-body: invalid size \"" + flags.webhook_max_body + "\"");
  }
  settings.limits.max_body_bytes = *max_body;
  return settings;
}

// Adds photond's `serve` flags to `command` (the NAME argument is the caller's business).
void add_serve_flags(CLI::App& command, ServeFlags& flags, bool embedded) {
  CLI::App* serve = &command;
  serve->add_flag("--detach", flags.detach,
                  "Run in the background; return once the socket answers");
  serve
      ->add_option("--idle-timeout", flags.idle_timeout,
                   "Exit after this long with no client connected and no lock held (e.g. 30s, "
                   "10m); 0 = never")
      ->capture_default_str();
  serve
      ->add_option("--log-level", flags.log_level,
                   "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  serve
      ->add_option("--max-line-bytes", flags.max_line_bytes,
                   "Longest request line; a longer one closes the connection")
      ->capture_default_str();
  serve->add_option("--max-json-depth", flags.max_json_depth, "Deepest JSON nesting accepted")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, defaults::kMaxJsonDepthLimit));
  serve->add_option("--max-subscriptions", flags.max_subscriptions, "Subscriptions per connection")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-connections", flags.max_connections, "Connections open at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--max-total-subscriptions", flags.max_total_subscriptions,
                   "Subscriptions of all connections together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--replay-messages", flags.replay_messages,
                   "Channel messages kept for subscribers that come back (lastEventId), in all")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve
      ->add_option("--replay-bytes", flags.replay_bytes,
                   "Bytes of channel messages kept for subscribers that come back, in all")
      ->capture_default_str();
  serve
      ->add_option("--replay-channel-messages", flags.replay_channel_messages,
                   "Channel messages kept for subscribers that come back, in one channel")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--replay-channel-bytes", flags.replay_channel_bytes,
                   "Bytes of channel messages kept for subscribers that come back, in one channel")
      ->capture_default_str();
  serve->add_option("--persist", flags.persist,
                    "Keep this channel's (or pattern's) recent messages in the daemon's database, "
                    "so subscribers resume across a restart or a crash; repeatable "
                    "(docs/channels.md)");
  serve
      ->add_option("--replay-age", flags.replay_age,
                   "How long a channel message is kept for subscribers that come back (0: no "
                   "age bound)")
      ->capture_default_str();
  serve
      ->add_option("--max-locks", flags.max_locks,
                   "Locks held at once (with --broker: by the whole photon, counted in Redis)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--output-hard-limit", flags.output_hard_limit,
                   "Queued output that closes a connection at once")
      ->capture_default_str();
  serve
      ->add_option("--output-soft-limit", flags.output_soft_limit,
                   "Queued output that closes a connection when held --output-soft-seconds")
      ->capture_default_str();
  serve
      ->add_option("--output-soft-seconds", flags.output_soft_seconds,
                   "How long output may stay over the soft limit")
      ->capture_default_str();
  if (!embedded) {
    serve->add_option("--manifest", flags.manifest,
                      "Serve the methods of this TOML manifest (exec photon; docs/methods.md)");
  }
  serve
      ->add_option("--prompt-timeout", flags.prompt_timeout,
                   "How long a method's prompt waits for the caller's answer")
      ->capture_default_str();
  serve->add_option("--webhook-port", flags.webhook_port,
                    "Serve webhooks (POST /webhook/METHOD) on this TCP port; 0: any free port "
                    "(default: $PHOTON_WEBHOOK_PORT, else off)");
  serve
      ->add_option("--webhook-bind", flags.webhook_bind,
                   "Address of the webhook endpoint (a non-loopback one needs authentication)")
      ->capture_default_str();
  serve->add_option(
      "--webhook-auth", flags.webhook_auth,
      "none, secret (X-Webhook-Secret), github, stripe or standard; secrets from "
      "$PHOTON_WEBHOOK_SECRET[_GITHUB|_STRIPE|_STANDARD|_SECRET] (default: secret when "
      "$PHOTON_WEBHOOK_SECRET is set, else none)");
  serve
      ->add_option("--webhook-methods", flags.webhook_methods,
                   "Only these methods answer webhooks (comma-separated)")
      ->delimiter(',');
  serve->add_option("--webhook-cors-origin", flags.webhook_cors_origins,
                    "Origins browsers may call from (repeatable; a trailing :* matches any port; "
                    "default http://localhost:* and http://127.0.0.1:*)");
  serve
      ->add_option("--webhook-max-body", flags.webhook_max_body,
                   "Largest webhook body (413 beyond)")
      ->capture_default_str();
  serve->add_option("--ui-port", flags.ui_port,
                    "Serve the dashboard, /ws, /events and /api on 127.0.0.1:PORT; 0: any free "
                    "port (default: $PHOTON_UI_PORT, else off; docs/ui.md)");
  serve->add_flag("--photon-core-http", flags.photon_core_http,
                  "Serve photon-core's HTTP channel broker at /channels on the UI listener, "
                  "with the token in $PHOTON_CHANNEL_AUTH_TOKEN (docs/scaling.md)");
  serve->add_option("--ui-allow-origin", flags.ui_allowed_origins,
                    "Another origin whose pages may use the UI listener (repeatable), e.g. "
                    "http://localhost:5173");
#ifdef PHOTON_TEST_CLOCK
  serve->add_flag("--test-clock{now}", flags.test_clock,
                  "Test builds only: run on a clock that moves only when a test_clock request "
                  "moves it, from now or from --test-clock=RFC3339 (docs/testing.md)");
#endif
  serve->add_option(
      "--broker", flags.broker,
      "Share channels, locks and jobs with this photon's daemons on other hosts through "
      "Redis: redis://[user:pass@]HOST[:PORT][/DB] or unix:///PATH (default: "
      "$PHOTON_REDIS_URL or $REDIS_URL when PHOTON_CHANNEL_BROKER=redis, else none)");
  serve->add_flag(
      "--photon-core-channels{default}", flags.photon_core_channels,
      "With --broker: also share channels with photon-core's Redis broker (TypeScript photons), "
      "on PREFIX+CHANNEL: --photon-core-channels=PREFIX, or alone for $PHOTON_REDIS_PREFIX, "
      "else photon:channel: (docs/scaling.md)");
  serve
      ->add_option("--missed-after", flags.missed_after,
                   "A job's run noticed this late counts as missed (daemon down, machine asleep)")
      ->capture_default_str();
  if (embedded) {
    serve
        ->add_option("--session-timeout", flags.session_timeout,
                     "Drop a session's photon instance after this long without a call")
        ->capture_default_str();
    serve
        ->add_option("--method-threads", flags.method_threads,
                     "Threads that run methods (a method waiting for a prompt holds one)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
  }
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
    std::cerr << program_name << ": " << error.what() << "\n";
    return error.exit_code();
  } catch (const std::exception& error) {
    std::cerr << program_name << ": " << error.what() << "\n";
    return kExitFailed;
  }
}

// Forks twice (so the daemon is no child of the caller's session), and returns in the original
// process once the daemon accepts connections or has failed to start. The daemon reports over a
// pipe: "ready PID", or "CODE MESSAGE" on failure.
int serve_detached(DaemonOptions options) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    std::perror((program_name + ": pipe").c_str());
    return kExitFailed;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror((program_name + ": fork").c_str());
    return kExitFailed;
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
      std::cerr << program_name << ": the daemon exited before it was ready\n";
      return kExitFailed;
    }
    const auto space = text.find(' ');
    std::cerr << program_name << ": " << text.substr(space + 1) << "\n";
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
    if (report[1] >= 0)
      write_all(report[1], std::to_string(error.exit_code()) + " " + error.what());
    return error.exit_code();
  } catch (const std::exception& error) {
    if (report[1] >= 0) write_all(report[1], std::to_string(kExitFailed) + " " + error.what());
    return kExitFailed;
  }
}

// Parses, converts and starts: the part both entry points share once their CLI::App is set up.
int parse_and_serve(CLI::App& app, int argc, char** argv, ServeFlags& flags,
                    const std::function<void(DaemonOptions&)>& add_host) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : kExitUsage;
  }
  DaemonOptions options;
  try {
    options = to_options(flags);
    add_host(options);
  } catch (const StartupError& error) {
    std::cerr << program_name << ": " << error.what() << "\n";
    return error.exit_code();
  }
  return flags.detach ? serve_detached(std::move(options)) : serve_foreground(options);
}

}  // namespace

int photond_main(int argc, char** argv) {
  CLI::App app{
      "photond: the local daemon of a photon (pub/sub, locks, methods over a Unix socket)"};
  app.set_version_flag("--version", std::string("photond ") + PHOTON_VERSION);
  app.require_subcommand(1);

  ServeFlags flags;
  CLI::App* serve =
      app.add_subcommand("serve", "Run the daemon of photon NAME on $PHOTON_DIR/daemons/NAME.sock");
  serve->add_option("name", flags.name, "Photon name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}")->required();
  add_serve_flags(*serve, flags, false);
  serve->footer(
      "Started by systemd (photond@NAME.socket), the daemon takes the listening socket systemd\n"
      "passes (socket activation; it must be NAME.sock, 0600, the daemon user's), reports\n"
      "readiness (Type=notify) and watchdog keep-alives, and leaves the socket to systemd when it\n"
      "exits. `photonctl service install NAME` writes the units; see docs/operations.md.");
  return parse_and_serve(app, argc, argv, flags, [&](DaemonOptions& options) {
    if (flags.manifest.empty()) return;
    // Loaded before the daemon starts (and before --detach forks), so a bad manifest is reported
    // on the terminal with its line number.
    auto manifest = std::make_shared<core::Manifest>([&] {
      try {
        return core::load_manifest(flags.manifest);
      } catch (const core::ManifestError& error) {
        throw StartupError(kExitUsage, error.what());
      }
    }());
    options.declared_jobs = manifest->jobs;
    options.make_host = [manifest, name = flags.name](HostEnvironment& environment) {
      core::ExecHostOptions host_options;
      host_options.photon_name = name;
      host_options.socket = environment.paths.socket;
      return std::make_unique<core::ExecHost>(environment.loop, *manifest, host_options);
    };
  });
}

int embedded_main(PhotonDefinition definition, int argc, char** argv) {
  if (argc > 0 && argv[0] != nullptr) {
    program_name = std::filesystem::path(argv[0]).filename().string();
  }
  CLI::App app{"The daemon of photon \"" + definition.name +
               "\" (pub/sub, locks, its methods over a Unix socket)"};
  app.set_version_flag("--version", program_name + " (photond " + PHOTON_VERSION + ")");
  ServeFlags flags;
  flags.name = definition.name;
  app.add_option("name", flags.name, "Photon name (default: " + definition.name + ")");
  add_serve_flags(app, flags, true);
  auto shared = std::make_shared<PhotonDefinition>(std::move(definition));
  return parse_and_serve(app, argc, argv, flags, [&](DaemonOptions& options) {
    core::EmbeddedHostOptions host_options;
    host_options.threads = flags.method_threads;
    auto timeout = parse_duration(flags.session_timeout);
    if (!timeout || timeout->count() == 0 || *timeout > std::chrono::hours(24 * 365 * 100)) {
      throw StartupError(kExitUsage, "--session-timeout: invalid duration \"" +
                                         flags.session_timeout + "\" (e.g. 30s, 10m)");
    }
    host_options.session_timeout = *timeout;
    for (const photon::Job& job : shared->jobs) {
      core::JobSpec spec;
      spec.id = job.id;
      spec.method = job.method;
      spec.cron = job.cron;
      spec.args = job.args;
      spec.timezone = job.timezone;
      spec.catch_up = job.catch_up ? core::CatchUp::kLatest : core::CatchUp::kSkip;
      spec.overlap = job.allow_overlap ? core::Overlap::kAllow : core::Overlap::kSkip;
      spec.created_by = "photon";
      spec.declared = true;
      options.declared_jobs.push_back(std::move(spec));
    }
    options.make_host = [shared, host_options](HostEnvironment& environment) {
      return std::make_unique<core::EmbeddedHost>(environment.loop.get_executor(),
                                                  environment.clock, *shared, host_options);
    };
  });
}

}  // namespace photon::daemon
