// photonctl: the command-line client. Start, stop and inspect daemons; publish and subscribe.
// Exit codes: 0 ok, 1 refused or failed, 2 usage, 3 daemon not running.
#include "cli/table.hpp"
#include "common/paths.hpp"
#include "common/units.hpp"
#include "photon/client.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <iterator>
#include <thread>

namespace {

using photon::ClientError;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotRunning = 3;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Globals {
  bool json = false;
};

std::chrono::milliseconds duration_flag(const std::string& text, const char* flag) {
  auto value = photon::parse_duration(text);
  if (!value) throw UsageError(std::string(flag) + ": invalid duration \"" + text + "\"");
  return *value;
}

void check_name(const std::string& name) {
  if (auto error = photon::photon_name_error(name)) throw UsageError(*error);
}

photon::Client connect(const std::string& name) {
  check_name(name);
  return photon::Client::connect(name);
}

void print_json(const boost::json::value& value) { std::cout << boost::json::serialize(value) << '\n'; }

// photond lives beside photonctl in a build or install tree; otherwise it is looked up on PATH.
std::string photond_program() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto sibling = self.parent_path() / "photond";
    if (::access(sibling.c_str(), X_OK) == 0) return sibling.string();
  }
  return "photond";
}

int run_process(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error("fork failed");
  if (child == 0) {
    ::execvp(args[0], args.data());
    std::cerr << "photonctl: cannot run " << argv[0] << ": " << std::strerror(errno) << "\n";
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailed;
}

bool answers_ping(const std::string& name) {
  try {
    photon::Client::connect(name, {.timeout = std::chrono::seconds(2)}).ping();
    return true;
  } catch (const ClientError&) {
    return false;
  }
}

int cmd_start(const Globals& globals, const std::string& name, const std::string& idle_timeout,
              const std::string& log_level) {
  check_name(name);
  duration_flag(idle_timeout, "--idle-timeout");
  if (answers_ping(name)) {
    if (globals.json) print_json({{"started", false}, {"running", true}, {"name", name}});
    else std::cout << name << " is already running\n";
    return kExitOk;
  }
  const int code = run_process({photond_program(), "serve", name, "--detach", "--idle-timeout",
                                idle_timeout, "--log-level", log_level});
  if (code != 0) return code == kExitUsage ? kExitUsage : kExitFailed;
  if (!answers_ping(name)) {
    std::cerr << "photonctl: " << name << " started but does not answer ping\n";
    return kExitFailed;
  }
  if (globals.json) print_json({{"started", true}, {"running", true}, {"name", name}});
  else std::cout << "started " << name << "\n";
  return kExitOk;
}

int cmd_stop(const Globals& globals, const std::string& name) {
  photon::Client client = connect(name);
  client.shutdown();
  // The daemon removes its socket when it starts shutting down and its pid file when it is gone.
  const auto pid_file = photon::photon_paths(name).pid_file;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::filesystem::exists(pid_file)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "photonctl: " << name << " acknowledged the shutdown but is still running after 10 s\n";
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (globals.json) print_json({{"stopped", true}, {"name", name}});
  else std::cout << "stopped " << name << "\n";
  return kExitOk;
}

int cmd_ping(const Globals& globals, const std::string& name) {
  photon::Client client = connect(name);
  const auto start = std::chrono::steady_clock::now();
  client.ping();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start).count();
  if (globals.json) print_json({{"pong", true}, {"name", name}, {"micros", micros}});
  else std::cout << "pong from " << name << " in " << micros << " µs\n";
  return kExitOk;
}

void print_status(const boost::json::object& status) {
  auto number = [&](const char* key) { return boost::json::serialize(status.at(key)); };
  std::cout << "name         " << status.at("name").as_string().c_str() << "\n"
            << "pid          " << number("pid") << "\n"
            << "version      " << status.at("version").as_string().c_str() << "\n"
            << "uptime       " << photon::cli::human_duration(status.at("uptimeMs").to_number<long long>()) << "\n"
            << "connections  " << number("connections") << "\n";
  const auto& counters = status.at("counters").as_object();
  std::cout << "published    " << boost::json::serialize(counters.at("published")) << "\n"
            << "delivered    " << boost::json::serialize(counters.at("delivered")) << "\n"
            << "dropped slow consumers  " << boost::json::serialize(counters.at("droppedSlowConsumers")) << "\n";
  const auto& channels = status.at("channels").as_array();
  if (channels.empty()) return;
  std::cout << "\n";
  photon::cli::Table table({"CHANNEL", "SUBSCRIBERS"});
  for (const auto& entry : channels) {
    const auto& channel = entry.as_object();
    table.add_row({std::string(channel.at("channel").as_string()),
                   boost::json::serialize(channel.at("subscribers"))});
  }
  table.print(std::cout);
}

int cmd_status_all(const Globals& globals) {
  const auto dir = photon::photon_dir() / "daemons";
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".sock") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  boost::json::array all;
  photon::cli::Table table({"NAME", "PID", "UPTIME", "CONNECTIONS", "CHANNELS", "STATE"});
  for (const auto& name : names) {
    if (photon::photon_name_error(name)) continue;
    try {
      auto status = photon::Client::connect(name, {.timeout = std::chrono::seconds(2)}).status();
      table.add_row({name, boost::json::serialize(status.at("pid")),
                     photon::cli::human_duration(status.at("uptimeMs").to_number<long long>()),
                     boost::json::serialize(status.at("connections")),
                     std::to_string(status.at("channels").as_array().size()), "running"});
      all.push_back(std::move(status));
    } catch (const ClientError& error) {
      table.add_row({name, "-", "-", "-", "-", "not answering"});
      all.push_back({{"name", name}, {"running", false}, {"error", error.what()}});
    }
  }
  if (globals.json) print_json(all);
  else if (names.empty()) std::cout << "no daemons under " << dir.string() << "\n";
  else table.print(std::cout);
  return kExitOk;
}

int cmd_status(const Globals& globals, const std::string& name) {
  if (name.empty()) return cmd_status_all(globals);
  auto status = connect(name).status();
  if (globals.json) print_json(status);
  else print_status(status);
  return kExitOk;
}

boost::json::value parse_message(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) throw UsageError("message is not valid JSON: " + ec.message());
  return value;
}

int cmd_pub(const Globals& globals, const std::string& name, const std::string& channel,
            const std::optional<std::string>& json) {
  check_name(name);
  const std::string text = json ? *json
                                : std::string(std::istreambuf_iterator<char>(std::cin),
                                              std::istreambuf_iterator<char>());
  boost::json::value message = parse_message(text);
  const std::size_t delivered = connect(name).publish(channel, message);
  if (globals.json) print_json({{"published", true}, {"channel", channel}, {"delivered", delivered}});
  else std::cout << "published to " << delivered << (delivered == 1 ? " subscriber\n" : " subscribers\n");
  return kExitOk;
}

int cmd_sub(const std::string& name, const std::vector<std::string>& channels,
            std::optional<std::size_t> count, const std::optional<std::string>& timeout_text) {
  photon::Client client = connect(name);
  for (const auto& channel : channels) client.subscribe(channel);
  using Clock = std::chrono::steady_clock;
  const auto timeout = timeout_text ? duration_flag(*timeout_text, "--timeout") : std::chrono::milliseconds::max();
  const auto deadline = timeout == std::chrono::milliseconds::max() ? Clock::time_point::max() : Clock::now() + timeout;
  std::size_t received = 0;
  while (!count || received < *count) {
    const auto left = deadline == Clock::time_point::max()
                          ? std::chrono::milliseconds(std::chrono::hours(24))
                          : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto message = client.next(left);
    if (!message) continue;
    std::cout << boost::json::serialize(boost::json::object{
                     {"id", message->id}, {"channel", message->channel}, {"message", message->message}})
              << std::endl;
    ++received;
  }
  if (count && received < *count) {
    std::cerr << "photonctl: timed out after " << received << " of " << *count << " messages\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"photonctl: control photon daemons and use their channels"};
  app.require_subcommand(1);
  Globals globals;
  app.add_flag("--json", globals.json, "Print JSON for scripts instead of text")->configurable(false);
  app.fallthrough();

  std::string name;
  std::string idle_timeout = "10m";
  std::string log_level = "info";
  auto* start = app.add_subcommand("start", "Start photon NAME's daemon in the background (if not running)");
  start->add_option("name", name, "Photon name")->required();
  start->add_option("--idle-timeout", idle_timeout, "Exit after this long with no client; 0 = never")
      ->capture_default_str();
  start->add_option("--log-level", log_level, "Daemon log level")->capture_default_str();

  auto* stop = app.add_subcommand("stop", "Stop photon NAME's daemon");
  stop->add_option("name", name, "Photon name")->required();

  auto* status = app.add_subcommand("status", "Show one daemon's status, or list every daemon");
  status->add_option("name", name, "Photon name (omit to list all under $PHOTON_DIR)");

  auto* ping = app.add_subcommand("ping", "Check that photon NAME's daemon answers");
  ping->add_option("name", name, "Photon name")->required();

  std::string channel;
  std::optional<std::string> message;
  auto* pub = app.add_subcommand("pub", "Publish a JSON message (argument or stdin) on CHANNEL");
  pub->add_option("name", name, "Photon name")->required();
  pub->add_option("channel", channel, "Channel name")->required();
  pub->add_option("json", message, "Message as JSON; read from stdin when omitted");

  std::vector<std::string> channels;
  std::optional<std::size_t> count;
  std::optional<std::string> timeout;
  auto* sub = app.add_subcommand("sub", "Print each message on CHANNEL... as one JSON line");
  sub->add_option("name", name, "Photon name")->required();
  sub->add_option("channels", channels, "Channels; a trailing * matches a prefix")->required();
  sub->add_option("--count", count, "Exit after this many messages (exit 1 if --timeout comes first)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--timeout", timeout, "Stop after this long (e.g. 5s)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }

  try {
    if (*start) return cmd_start(globals, name, idle_timeout, log_level);
    if (*stop) return cmd_stop(globals, name);
    if (*status) return cmd_status(globals, name);
    if (*ping) return cmd_ping(globals, name);
    if (*pub) return cmd_pub(globals, name, channel, message);
    if (*sub) return cmd_sub(name, channels, count, timeout);
  } catch (const UsageError& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitUsage;
  } catch (const ClientError& error) {
    if (error.kind() == ClientError::Kind::kNotRunning) {
      std::cerr << "photonctl: " << name << " is not running (" << error.what() << ")\n";
      return kExitNotRunning;
    }
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  } catch (const std::exception& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  }
  return kExitUsage;
}
