// photonctl: the command-line client. Start, stop and inspect daemons; publish and subscribe; run
// a command under a lock; call the photon's methods and schedule them as cron jobs. Exit codes: 0
// ok, 1 refused or failed, 2 usage, 3 daemon not running; `lock` exits with its command's status,
// or 75 when the lock was not acquired.
#include "cli/cron_command.hpp"
#include "cli/json_text.hpp"
#include "cli/prompter.hpp"
#include "cli/service_command.hpp"
#include "cli/suggest.hpp"
#include "cli/table.hpp"
#include "cli/ui_command.hpp"
#include "cli/webhook_command.hpp"
#include "common/exit_codes.hpp"
#include "common/paths.hpp"
#include "common/units.hpp"
#include "jobs/cron.hpp"
#include "jobs/job_words.hpp"
#include "photon/client.hpp"
#include "photon/lock_guard.hpp"

#include <date/tz.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

namespace {

using photon::ClientError;
using photon::kExitFailed;
using photon::kExitNotAcquired;
using photon::kExitNotRunning;
using photon::kExitOk;
using photon::kExitUsage;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Globals {
  bool json = false;
};

std::string from_now(std::chrono::system_clock::time_point when);

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

void print_json(const boost::json::value& value) {
  std::cout << boost::json::serialize(value) << '\n';
}

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
    if (globals.json)
      print_json({{"started", false}, {"running", true}, {"name", name}});
    else
      std::cout << name << " is already running\n";
    return kExitOk;
  }
  const int code = run_process({photond_program(), "serve", name, "--detach", "--idle-timeout",
                                idle_timeout, "--log-level", log_level});
  if (code != 0) return code == kExitUsage ? kExitUsage : kExitFailed;
  if (!answers_ping(name)) {
    std::cerr << "photonctl: " << name << " started but does not answer ping\n";
    return kExitFailed;
  }
  if (globals.json)
    print_json({{"started", true}, {"running", true}, {"name", name}});
  else
    std::cout << "started " << name << "\n";
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
      std::cerr << "photonctl: " << name
                << " acknowledged the shutdown but is still running after 10 s\n";
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (globals.json)
    print_json({{"stopped", true}, {"name", name}});
  else
    std::cout << "stopped " << name << "\n";
  return kExitOk;
}

// Waits until the daemon whose pid file is `pid_file` is gone; false after 10 s.
bool wait_until_gone(const std::filesystem::path& pid_file) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::filesystem::exists(pid_file)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// The command line and working directory of process `pid` (from /proc), to start it again.
std::optional<std::pair<std::vector<std::string>, std::filesystem::path>> command_of(
    long long pid) {
  const std::filesystem::path proc = "/proc/" + std::to_string(pid);
  std::ifstream in(proc / "cmdline", std::ios::binary);
  std::vector<std::string> argv;
  std::string arg;
  while (std::getline(in, arg, '\0')) argv.push_back(arg);
  std::error_code ec;
  const auto cwd = std::filesystem::read_symlink(proc / "cwd", ec);
  if (argv.empty() || ec) return std::nullopt;
  return std::make_pair(std::move(argv), cwd);
}

// Stops the daemon and starts it again the way it was started: a socket-activated one by
// connecting (systemd starts it), any other with its own command line (and working directory),
// detached.
int cmd_restart(const Globals& globals, const std::string& name) {
  photon::Client client = connect(name);
  const boost::json::object status = client.status();
  const long long old_pid = status.at("pid").to_number<long long>();
  const auto* activated = status.if_contains("socketActivated");
  const bool by_systemd = activated != nullptr && activated->is_bool() && activated->get_bool();
  std::optional<std::pair<std::vector<std::string>, std::filesystem::path>> command;
  if (!by_systemd) {
    command = command_of(old_pid);
    if (!command) {
      std::cerr << "photonctl: cannot read the command line of pid " << old_pid << "\n";
      return kExitFailed;
    }
    auto& argv = command->first;
    if (std::find(argv.begin(), argv.end(), "--detach") == argv.end()) argv.push_back("--detach");
  }
  client.shutdown();
  if (!wait_until_gone(photon::photon_paths(name).pid_file)) {
    std::cerr << "photonctl: " << name
              << " acknowledged the shutdown but is still running after 10 s\n";
    return kExitFailed;
  }
  if (command) {
    const std::filesystem::path here = std::filesystem::current_path();
    std::filesystem::current_path(command->second);
    const int code = run_process(command->first);
    std::filesystem::current_path(here);
    if (code != 0) {
      std::cerr << "photonctl: " << name << " stopped, but starting it again failed (exit " << code
                << ")\n";
      return kExitFailed;
    }
  }
  // A socket-activated daemon starts at this connect.
  const long long new_pid = photon::Client::connect(name, {.timeout = std::chrono::seconds(30)})
                                .status()
                                .at("pid")
                                .to_number<long long>();
  if (globals.json)
    print_json({{"restarted", true}, {"name", name}, {"oldPid", old_pid}, {"pid", new_pid}});
  else
    std::cout << "restarted " << name << " (pid " << old_pid << " -> " << new_pid << ")\n";
  return kExitOk;
}

// Prints the last `lines` lines of the daemon's log (all with 0), then with `follow` what is
// appended, across rotations, until interrupted.
int cmd_logs(const std::string& name, std::size_t lines, bool follow) {
  check_name(name);
  const std::filesystem::path path = photon::photon_paths(name).log_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "photonctl: no log for " << name << " at " << path.string() << "\n";
    return kExitFailed;
  }
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(std::move(line));
    if (lines != 0 && tail.size() > lines) tail.pop_front();
  }
  for (const auto& kept : tail) std::cout << kept << "\n";
  std::cout << std::flush;
  if (!follow) return kExitOk;
  in.clear();
  std::streamoff offset = in.tellg();
  auto inode_of = [](const std::filesystem::path& file) -> ino_t {
    struct stat info {};
    return ::stat(file.c_str(), &info) == 0 ? info.st_ino : 0;
  };
  ino_t inode = inode_of(path);
  for (;;) {
    char buffer[4096];
    in.read(buffer, sizeof buffer);
    const std::streamsize count = in.gcount();
    if (count > 0) {
      std::cout.write(buffer, count);
      std::cout.flush();
      offset += count;
      continue;
    }
    in.clear();
    // Rotated (renamed away, a new file in its place) or truncated: read the new file from its
    // start.
    const ino_t now = inode_of(path);
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (now != 0 && !ec && (now != inode || static_cast<std::streamoff>(size) < offset)) {
      in.close();
      in.open(path, std::ios::binary);
      inode = now;
      offset = 0;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int cmd_ping(const Globals& globals, const std::string& name) {
  photon::Client client = connect(name);
  const auto start = std::chrono::steady_clock::now();
  client.ping();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  if (globals.json)
    print_json({{"pong", true}, {"name", name}, {"micros", micros}});
  else
    std::cout << "pong from " << name << " in " << micros << " µs\n";
  return kExitOk;
}

void print_status(const boost::json::object& status) {
  auto number = [&](const char* key) { return boost::json::serialize(status.at(key)); };
  std::cout << "name         " << status.at("name").as_string().c_str() << "\n"
            << "pid          " << number("pid") << "\n"
            << "version      " << status.at("version").as_string().c_str() << "\n"
            << "uptime       "
            << photon::cli::human_duration(status.at("uptimeMs").to_number<long long>()) << "\n"
            << "connections  " << number("connections") << "\n";
  const auto& counters = status.at("counters").as_object();
  std::cout << "published    " << boost::json::serialize(counters.at("published")) << "\n"
            << "delivered    " << boost::json::serialize(counters.at("delivered")) << "\n"
            << "dropped slow consumers  "
            << boost::json::serialize(counters.at("droppedSlowConsumers")) << "\n";
  if (const auto* broker = status.if_contains("broker"); broker != nullptr && broker->is_object()) {
    // Joined to the photon's daemons on other hosts (docs/scaling.md).
    const auto& fields = broker->as_object();
    auto field = [&](const char* key) {
      const auto* value = fields.if_contains(key);
      if (value == nullptr) return std::string("-");
      return value->is_string() ? std::string(value->as_string()) : boost::json::serialize(*value);
    };
    std::cout << "broker       " << field("url") << " " << field("state") << " (forwarded "
              << field("forwarded") << ", received " << field("received") << ", dropped "
              << field("dropped") << ", reconnects " << field("reconnects") << ")\n";
    if (fields.contains("lastError")) std::cout << "broker error " << field("lastError") << "\n";
  }
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

// What a photon's daemon left behind when no process serves its socket: the socket and pid files
// that exist, and whether the pid file names a live process. Empty when nothing is left.
struct Leftovers {
  std::vector<std::string> files;
  long long pid = 0;  // from the pid file; 0 when none
  bool pid_alive = false;
};

Leftovers leftovers_of(const std::string& name) {
  const photon::PhotonPaths paths = photon::photon_paths(name);
  Leftovers found;
  std::error_code ec;
  for (const auto& file : {paths.socket, paths.pid_file, paths.ui_file}) {
    if (std::filesystem::symlink_status(file, ec).type() != std::filesystem::file_type::not_found) {
      found.files.push_back(file.string());
    }
  }
  std::ifstream pid_file(paths.pid_file);
  if (pid_file >> found.pid && found.pid > 0) {
    found.pid_alive = ::kill(static_cast<pid_t>(found.pid), 0) == 0 || errno == EPERM;
  }
  return found;
}

// "dead": a socket file nobody listens on (the daemon crashed or was killed).
std::string dead_state(const Leftovers& leftovers) {
  return leftovers.pid_alive ? "stale socket (pid " + std::to_string(leftovers.pid) + " alive)"
                             : "dead (stale socket)";
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
      // Refused: no process listens (a dead daemon's socket); otherwise one is there but slow.
      const bool dead = error.kind() == ClientError::Kind::kNotRunning;
      table.add_row(
          {name, "-", "-", "-", "-", dead ? dead_state(leftovers_of(name)) : "not answering"});
      all.push_back({{"name", name}, {"running", false}, {"dead", dead}, {"error", error.what()}});
    }
  }
  if (globals.json)
    print_json(all);
  else if (names.empty())
    std::cout << "no daemons under " << dir.string() << "\n";
  else
    table.print(std::cout);
  return kExitOk;
}

// The daemon is not running: say so, with what it left behind (a stale socket means it died).
int report_not_running(const Globals& globals, const std::string& name, const ClientError& error) {
  const Leftovers leftovers = leftovers_of(name);
  if (globals.json) {
    boost::json::array files(leftovers.files.begin(), leftovers.files.end());
    print_json({{"name", name},
                {"running", false},
                {"dead", !leftovers.files.empty()},
                {"leftovers", std::move(files)},
                {"error", error.what()}});
  }
  if (leftovers.files.empty()) {
    std::cerr << "photonctl: " << name << " is not running\n";
    return kExitNotRunning;
  }
  std::cerr << "photonctl: " << name << " is dead: no process serves its socket";
  if (leftovers.pid > 0) {
    std::cerr << "; its pid file names pid " << leftovers.pid
              << (leftovers.pid_alive ? ", which is alive but does not listen" : ", which is gone");
  }
  std::cerr << "\nleft behind (the next start replaces them):\n";
  for (const auto& file : leftovers.files) std::cerr << "  " << file << "\n";
  return kExitNotRunning;
}

// A short list of `items` for one status line: "a, b, c and 4 more"; "none" when empty.
std::string short_list(const std::vector<std::string>& items) {
  constexpr std::size_t kShown = 8;
  if (items.empty()) return "none";
  std::string text;
  for (std::size_t i = 0; i < items.size() && i < kShown; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > kShown) text += " and " + std::to_string(items.size() - kShown) + " more";
  return text;
}

// The human form adds what a person asks next: locks, jobs, methods, URLs and where the log is.
// The jobs table of `status NAME`; `text` reads a string member or "".
template <typename Text>
void print_status_jobs(photon::Client& client, const Text& text);

void print_status_details(photon::Client& client, const std::string& name,
                          const boost::json::object& status) {
  const auto text = [](const boost::json::value& value, std::string_view key) {
    const auto* member = value.is_object() ? value.get_object().if_contains(key) : nullptr;
    return member != nullptr && member->is_string() ? std::string(member->get_string())
                                                    : std::string();
  };
  if (const auto* ui = status.if_contains("ui"))
    std::cout << "ui           " << text(*ui, "url") << "\n";
  if (const auto* webhook = status.if_contains("webhook")) {
    std::cout << "webhooks     " << text(*webhook, "url")
              << " (authentication: " << text(*webhook, "auth") << ")\n";
  }
  std::cout << "log          " << photon::photon_paths(name).log_file.string() << "\n";

  std::vector<std::string> method_names;
  for (const auto& method : client.list_methods()) method_names.push_back(method.name);
  std::cout << "methods      " << short_list(method_names) << "\n";

  // A section the daemon cannot list now (the broker holding the locks is down) says why; the
  // rest of the status is still shown, and the status itself succeeded.
  std::vector<photon::LockInfo> locks;
  try {
    locks = client.list_locks();
  } catch (const ClientError& error) {
    if (error.kind() != ClientError::Kind::kRefused) throw;
    std::cout << "\nlocks unavailable: " << error.what() << "\n";
    return print_status_jobs(client, text);
  }
  std::cout << "\n";
  if (locks.empty()) {
    std::cout << "no locks held\n";
  } else {
    photon::cli::Table table({"LOCK", "HOLDER", "TOKEN", "EXPIRES", "WAITERS"});
    for (const auto& lock : locks) {
      table.add_row({lock.name, lock.holder, std::to_string(lock.token), from_now(lock.expires_at),
                     std::to_string(lock.waiters)});
    }
    table.print(std::cout);
  }
  print_status_jobs(client, text);
}

template <typename Text>
void print_status_jobs(photon::Client& client, const Text& text) {
  boost::json::value jobs;
  try {
    jobs = client.request({{"type", "list_jobs"}});
  } catch (const ClientError& error) {
    if (error.kind() != ClientError::Kind::kRefused) throw;
    std::cout << "\njobs unavailable: " << error.what() << "\n";
    return;
  }
  const boost::json::array& list = jobs.at("jobs").as_array();
  std::cout << "\n";
  if (list.empty()) {
    std::cout << "no jobs\n";
    return;
  }
  photon::cli::Table table({"JOB", "CRON", "METHOD", "NEXT RUN", "LAST STATUS"});
  for (const auto& entry : list) {
    const boost::json::object& job = entry.as_object();
    const boost::json::value* next = job.if_contains("nextRun");
    const std::string status_text = text(job, "lastStatus");
    table.add_row({text(job, "id"), text(job, "cron"), text(job, "method"),
                   next != nullptr && next->is_number()
                       ? from_now(std::chrono::system_clock::time_point{
                             std::chrono::milliseconds(next->to_number<long long>())})
                       : "never",
                   status_text.empty() ? "-" : status_text});
  }
  table.print(std::cout);
}

int cmd_status(const Globals& globals, const std::string& name) {
  if (name.empty()) return cmd_status_all(globals);
  check_name(name);
  try {
    photon::Client client = photon::Client::connect(name);
    const boost::json::object status = client.status();
    if (globals.json) {
      print_json(status);
      return kExitOk;
    }
    print_status(status);
    std::cout << "\n";
    print_status_details(client, name, status);
    return kExitOk;
  } catch (const ClientError& error) {
    if (error.kind() != ClientError::Kind::kNotRunning) throw;
    return report_not_running(globals, name, error);
  }
}

boost::json::value parse_message(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) throw UsageError("message is not valid JSON: " + ec.message());
  return value;
}

// The message argument, or one message per non-blank line of stdin (published as each arrives,
// so `tail -f log | photonctl pub --raw NAME CHANNEL` streams). With `raw`, the text is sent as a
// JSON string; otherwise it must be JSON. A line that is not stops the run (exit 2) after the
// lines before it were published.
int cmd_pub(const Globals& globals, const std::string& name, const std::string& channel,
            const std::optional<std::string>& json, bool raw) {
  check_name(name);
  auto message_of = [raw](const std::string& text) {
    return raw ? boost::json::value(boost::json::string(text)) : parse_message(text);
  };
  if (json) {
    boost::json::value message = message_of(*json);
    const std::size_t delivered = connect(name).publish(channel, message);
    if (globals.json)
      print_json({{"published", true}, {"channel", channel}, {"delivered", delivered}});
    else
      std::cout << "published to " << delivered
                << (delivered == 1 ? " subscriber\n" : " subscribers\n");
    return kExitOk;
  }
  std::optional<photon::Client> client;
  std::size_t messages = 0;
  std::size_t delivered = 0;
  std::size_t line_number = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    boost::json::value message;
    try {
      message = message_of(line);
    } catch (const UsageError& error) {
      throw UsageError("stdin line " + std::to_string(line_number) + ": " + error.what() + " (" +
                       std::to_string(messages) + " published before it; --raw sends text as is)");
    }
    if (!client) client.emplace(connect(name));
    delivered += client->publish(channel, message);
    ++messages;
  }
  if (messages == 0) throw UsageError("no message: give one as an argument, or lines on stdin");
  if (globals.json) {
    print_json({{"published", true},
                {"channel", channel},
                {"messages", messages},
                {"delivered", delivered}});
  } else if (messages == 1) {
    std::cout << "published to " << delivered
              << (delivered == 1 ? " subscriber\n" : " subscribers\n");
  } else {
    std::cout << "published " << messages << " messages, " << delivered
              << (delivered == 1 ? " delivery\n" : " deliveries\n");
  }
  return kExitOk;
}

int cmd_sub(const std::string& name, const std::vector<std::string>& channels,
            std::optional<std::size_t> count, const std::optional<std::string>& timeout_text) {
  photon::Client client = connect(name);
  for (const auto& channel : channels) client.subscribe(channel);
  using Clock = std::chrono::steady_clock;
  const auto timeout =
      timeout_text ? duration_flag(*timeout_text, "--timeout") : std::chrono::milliseconds::max();
  const auto deadline = timeout == std::chrono::milliseconds::max() ? Clock::time_point::max()
                                                                    : Clock::now() + timeout;
  std::size_t received = 0;
  while (!count || received < *count) {
    const auto left =
        deadline == Clock::time_point::max()
            ? std::chrono::milliseconds(std::chrono::hours(24))
            : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto message = client.next(left);
    if (!message) continue;
    std::cout << boost::json::serialize(boost::json::object{{"id", message->id},
                                                            {"channel", message->channel},
                                                            {"message", message->message}})
              << std::endl;
    ++received;
  }
  if (count && received < *count) {
    std::cerr << "photonctl: timed out after " << received << " of " << *count << " messages\n";
    return kExitFailed;
  }
  return kExitOk;
}

// The protocol's bounds on lockTimeout and lockWait, checked before connecting.
constexpr std::chrono::milliseconds kMaxLockTtl = std::chrono::hours(24 * 7);
constexpr std::chrono::milliseconds kMaxLockWait = std::chrono::hours(24);

// "in 12s", "12s ago": a wall-clock instant relative to now.
std::string from_now(std::chrono::system_clock::time_point when) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(when - std::chrono::system_clock::now())
          .count();
  return millis >= 0 ? "in " + photon::cli::human_duration(millis)
                     : photon::cli::human_duration(-millis) + " ago";
}

long long epoch_millis(std::chrono::system_clock::time_point when) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
}

// A command for execvpe, prepared before fork: after it, the child may only make
// async-signal-safe calls (the lock's renewal thread exists).
struct PreparedCommand {
  PreparedCommand(const std::vector<std::string>& command, std::vector<std::string> environment)
      : args_(command), env_(std::move(environment)) {
    for (auto& arg : args_) argv.push_back(arg.data());
    argv.push_back(nullptr);
    for (auto& entry : env_) envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
  std::vector<char*> argv;
  std::vector<char*> envp;

 private:
  std::vector<std::string> args_;
  std::vector<std::string> env_;
};

// This process's environment with `extra` (NAME=value entries) set, replacing earlier values.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& set) {
      return text.substr(0, text.find('=') + 1) == set.substr(0, set.find('=') + 1);
    });
    if (!replaced) result.emplace_back(text);
  }
  result.insert(result.end(), extra.begin(), extra.end());
  return result;
}

// Starts the command with `mask` as its signal mask. Returns its pid, or the errno of a failed
// exec (reported by the child through a close-on-exec pipe, which closes unwritten on success).
struct Started {
  pid_t pid = -1;
  int exec_error = 0;
};

Started start_command(PreparedCommand& command, const sigset_t& mask) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t child = ::fork();
  if (child < 0) {
    const int error = errno;
    ::close(report[0]);
    ::close(report[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(error));
  }
  if (child == 0) {
    ::close(report[0]);
    ::pthread_sigmask(SIG_SETMASK, &mask, nullptr);
    ::execvpe(command.argv[0], command.argv.data(), command.envp.data());
    const int error = errno;
    [[maybe_unused]] const ssize_t written = ::write(report[1], &error, sizeof error);
    ::_exit(error == ENOENT ? 127 : 126);
  }
  ::close(report[1]);
  Started started{.pid = child};
  ssize_t count;
  while ((count = ::read(report[0], &started.exec_error, sizeof started.exec_error)) < 0 &&
         errno == EINTR) {
  }
  if (count != static_cast<ssize_t>(sizeof started.exec_error)) started.exec_error = 0;
  ::close(report[0]);
  return started;
}

int cmd_lock(const std::string& name, const std::string& lock_name, const std::string& ttl_text,
             const std::string& wait_text, const std::vector<std::string>& command) {
  check_name(name);
  const auto ttl = duration_flag(ttl_text, "--ttl");
  if (ttl.count() < 1 || ttl > kMaxLockTtl) throw UsageError("--ttl must be between 1ms and 7d");
  // "forever" (or -1, as flock(1) without -w): wait in rounds of the protocol's longest wait.
  const bool forever = wait_text == "forever" || wait_text == "-1";
  const auto wait = forever ? kMaxLockWait : duration_flag(wait_text, "--wait");
  if (wait > kMaxLockWait) throw UsageError("--wait must be at most 24h, or forever");
  if (command.empty()) {
    throw UsageError("lock needs a command: photonctl lock NAME LOCK -- CMD [ARGS...]");
  }

  // One holder for the whole run, so every renewal is the same holder, and one per run, so two
  // runs exclude each other like flock(1) even when they share $PHOTON_SESSION_ID. The lock also
  // ends with the connection, should photonctl die without releasing it.
  const photon::ClientOptions holder{.session_id = photon::default_session_id() + "/lock-" +
                                                   std::to_string(::getpid())};
  auto acquire = [&](std::chrono::milliseconds within) {
    return photon::LockGuard::acquire(
        name, lock_name, {.ttl = ttl, .wait = within, .release_on_disconnect = true}, holder);
  };
  // A first try without waiting says who holds the lock, once, before the wait begins.
  photon::LockGuard guard = acquire(std::chrono::milliseconds(0));
  if (!guard && wait.count() > 0) {
    const photon::LockResult& busy = guard.result();
    std::cerr << "photonctl: waiting "
              << (forever ? std::string("without a limit")
                          : "up to " + photon::cli::human_duration(wait.count()))
              << " for lock \"" << lock_name << "\""
              << (busy.holder.empty() ? std::string()
                                      : ", held by " + busy.holder + " (its lease ends " +
                                            from_now(busy.expires_at) + ")")
              << "\n";
    guard = acquire(wait);
    while (!guard && forever) guard = acquire(wait);
  }
  if (!guard) {
    const photon::LockResult& refusal = guard.result();
    std::cerr << "photonctl: " << refusal.reason;
    if (!refusal.holder.empty()) {
      std::cerr << " (its lease ends " << from_now(refusal.expires_at) << ")";
    }
    std::cerr << "\n";
    return kExitNotAcquired;
  }

  // From here photonctl waits for signals instead of dying of them: it forwards them to the
  // command and releases the lock once the command has ended.
  sigset_t handled;
  sigset_t previous;
  ::sigemptyset(&handled);
  for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::sigaddset(&handled, signo);
  ::pthread_sigmask(SIG_BLOCK, &handled, &previous);

  PreparedCommand prepared(
      command, environment_with({"PHOTON_LOCK_NAME=" + lock_name,
                                 "PHOTON_LOCK_TOKEN=" + std::to_string(guard.token())}));
  const Started started = start_command(prepared, previous);
  int status = 0;
  bool warned = false;
  auto warn_if_lost = [&] {
    if (warned || !guard.lost()) return;
    warned = true;
    std::cerr
        << "photonctl: warning: the lease on lock \"" << lock_name
        << "\" was lost (renewal refused or the daemon unreachable); the command keeps running, "
           "but another process may hold the lock now\n";
  };
  for (;;) {
    siginfo_t info{};
    const timespec tick{0, 100'000'000};
    const int signo = ::sigtimedwait(&handled, &info, &tick);
    // A signal the terminal sent to the foreground process group (Ctrl-C) reached the command
    // already; only one sent to photonctl alone is forwarded.
    if ((signo == SIGINT || signo == SIGTERM || signo == SIGHUP) && info.si_code != SI_KERNEL) {
      ::kill(started.pid, signo);
    }
    const pid_t done = ::waitpid(started.pid, &status, WNOHANG);
    if (done == started.pid || (done < 0 && errno != EINTR)) break;
    warn_if_lost();
  }
  warn_if_lost();
  const bool lost = guard.lost();
  const photon::LockRelease released = guard.release();
  if (!released && !lost) {
    std::cerr << "photonctl: could not release lock \"" << lock_name << "\": " << released.reason
              << "\n";
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);

  if (started.exec_error != 0) {
    std::cerr << "photonctl: cannot run " << command[0] << ": " << std::strerror(started.exec_error)
              << "\n";
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailed;
}

int cmd_locks(const Globals& globals, const std::string& name) {
  const std::vector<photon::LockInfo> locks = connect(name).list_locks();
  if (globals.json) {
    boost::json::array all;
    for (const auto& lock : locks) {
      all.push_back({{"name", lock.name},
                     {"holder", lock.holder},
                     {"acquiredAt", epoch_millis(lock.acquired_at)},
                     {"expiresAt", epoch_millis(lock.expires_at)},
                     {"token", lock.token},
                     {"waiters", lock.waiters}});
    }
    print_json(boost::json::object{{"locks", std::move(all)}});
    return kExitOk;
  }
  if (locks.empty()) {
    std::cout << "no locks held on " << name << "\n";
    return kExitOk;
  }
  photon::cli::Table table({"LOCK", "HOLDER", "TOKEN", "ACQUIRED", "EXPIRES", "WAITERS"});
  for (const auto& lock : locks) {
    table.add_row({lock.name, lock.holder, std::to_string(lock.token), from_now(lock.acquired_at),
                   from_now(lock.expires_at), std::to_string(lock.waiters)});
  }
  table.print(std::cout);
  return kExitOk;
}

int cmd_unlock(const Globals& globals, const std::string& name, const std::string& lock_name,
               const std::optional<std::string>& session) {
  check_name(name);
  photon::ClientOptions options;
  if (session) {
    if (session->empty()) throw UsageError("--session must not be empty");
    options.session_id = *session;
  }
  photon::Client client = photon::Client::connect(name, options);
  const photon::LockRelease released = client.release_lock(lock_name);
  if (globals.json) {
    boost::json::object out{
        {"released", released.released}, {"lockName", lock_name}, {"session", client.session_id()}};
    if (!released) out["reason"] = released.reason;
    print_json(out);
  } else if (released) {
    std::cout << "released " << lock_name << "\n";
  }
  if (!released) {
    std::cerr << "photonctl: " << released.reason << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

// The daemon's session for requests that name none: photon instance state shared by every caller
// that does not choose a session.
constexpr const char* kDefaultSession = "default";

// The `args` of a call: --args, then each key=value pair over it (see the call footer).
boost::json::object call_args(const std::vector<std::string>& pairs,
                              const std::optional<std::string>& args_json) {
  boost::json::object args;
  if (args_json) {
    boost::system::error_code ec;
    boost::json::value base = boost::json::parse(*args_json, ec);
    if (ec || !base.is_object()) throw UsageError("--args must be a JSON object");
    args = std::move(base.get_object());
  }
  for (const auto& pair : pairs) {
    const auto equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw UsageError("argument \"" + pair + "\" is not key=value");
    }
    args[pair.substr(0, equals)] =
        photon::cli::loose_json(std::string_view(pair).substr(equals + 1));
  }
  return args;
}

// A progress event on stderr: "… 50% copying" when it has a message (and a percent), else its JSON.
void print_progress(const boost::json::object& event) {
  const auto* message = event.if_contains("message");
  if (message == nullptr || !message->is_string()) {
    std::cerr << "… " << boost::json::serialize(event) << "\n";
    return;
  }
  std::cerr << "… ";
  if (const auto* percent = event.if_contains("percent"); percent && percent->is_number()) {
    std::cerr << boost::json::serialize(*percent) << "% ";
  }
  std::cerr << std::string_view(message->get_string()) << "\n";
}

int cmd_call(const Globals& globals, const std::string& name, const std::string& method,
             const std::vector<std::string>& pairs, const std::optional<std::string>& args_json,
             const std::optional<std::string>& session, const std::vector<std::string>& answers,
             const std::optional<std::string>& timeout_text) {
  check_name(name);
  if (method.empty()) throw UsageError("METHOD must not be empty");
  const boost::json::object args = call_args(pairs, args_json);
  photon::ClientOptions options;
  if (session) {
    if (session->empty()) throw UsageError("--session must not be empty");
    options.session_id = *session;
  } else if (const char* fixed = std::getenv("PHOTON_SESSION_ID"); fixed && *fixed != '\0') {
    options.session_id = fixed;
  } else {
    options.session_id = kDefaultSession;
  }
  photon::CallOptions call;
  call.client_type = "cli";
  if (timeout_text) {
    call.timeout = duration_flag(*timeout_text, "--timeout");
    if (call.timeout.count() <= 0) throw UsageError("--timeout must be positive");
  }
  photon::cli::Prompter prompter(answers, ::isatty(STDIN_FILENO) == 1);
  call.on_prompt = [&prompter](const photon::PromptRequest& prompt) {
    return prompter.answer(prompt);
  };
  call.on_emit = print_progress;

  photon::Client client = photon::Client::connect(name, options);
  const boost::json::value result = client.call(method, args, std::move(call));
  if (globals.json)
    print_json(result);
  else if (result.is_string())
    std::cout << std::string_view(result.get_string()) << "\n";
  else if (!result.is_null())
    std::cout << photon::cli::pretty_json(result) << "\n";
  return kExitOk;
}

int cmd_methods(const Globals& globals, const std::string& name) {
  const std::vector<photon::MethodDescription> methods = connect(name).list_methods();
  if (globals.json) {
    boost::json::array all;
    for (const auto& method : methods) {
      boost::json::array params;
      for (const auto& param : method.params) {
        params.push_back({{"name", param.name},
                          {"type", param.type},
                          {"description", param.description},
                          {"required", param.required}});
      }
      all.push_back({{"name", method.name},
                     {"description", method.description},
                     {"params", std::move(params)}});
    }
    print_json(boost::json::object{{"photon", name}, {"methods", std::move(all)}});
    return kExitOk;
  }
  if (methods.empty()) {
    std::cout << name << " has no methods\n";
    return kExitOk;
  }
  photon::cli::Table table({"METHOD", "PARAMETERS", "DESCRIPTION"});
  for (const auto& method : methods) {
    std::string params;
    for (const auto& param : method.params) {
      if (!params.empty()) params += ' ';
      params += param.required ? param.name : "[" + param.name + "]";
    }
    table.add_row({method.name, params, method.description});
  }
  table.print(std::cout);
  return kExitOk;
}

// Jobs: the daemon's cron jobs (schedule, unschedule, list_jobs, job_history, run_job). Times are
// shown as local time with their UTC offset, whatever the job's own zone.

// `millis` (epoch milliseconds) as "2026-11-27 09:00:00 +0100"; "-" when it is not a number.
std::string local_time(const boost::json::value& millis) {
  if (!millis.is_number()) return "-";
  const std::chrono::sys_seconds when =
      std::chrono::floor<std::chrono::seconds>(std::chrono::sys_time<std::chrono::milliseconds>(
          std::chrono::milliseconds(millis.to_number<long long>())));
  return date::format("%F %T %z", date::make_zoned(&photon::core::cron_zone(""), when));
}

// "2026-11-27 09:00:00 +0100 (in 5h 3m)".
std::string local_time_from_now(const boost::json::value& millis) {
  if (!millis.is_number()) return "-";
  const std::chrono::system_clock::time_point when{
      std::chrono::milliseconds(millis.to_number<long long>())};
  return local_time(millis) + " (" + from_now(when) + ")";
}

// The string member `key` of `object`; empty when it is missing or not a string.
std::string_view text_field(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string_view(value->get_string())
                                                : std::string_view();
}

// `text` on one line for a table cell, cut to about `width` bytes (an ellipsis marks the cut,
// never inside a UTF-8 sequence).
std::string one_line(std::string_view text, std::size_t width) {
  std::string line;
  for (const char c : text) line += c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
  while (!line.empty() && line.back() == ' ') line.pop_back();
  if (line.size() <= width) return line;
  std::size_t cut = width;
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return line.substr(0, cut) + "…";
}

// A request the daemon refused (`success: false` or an error): the reason on stderr, and `data`
// (with the reason) on stdout with --json. Returns the exit status.
int job_refused(const Globals& globals, boost::json::object data, const std::string& reason) {
  if (globals.json) {
    data["reason"] = reason;
    print_json(data);
  }
  std::cerr << "photonctl: " << reason << "\n";
  return kExitFailed;
}

// Sends a job request; nothing when the daemon refused it (a ClientError of kind kRefused, whose
// message is the reason, goes to `reason`).
std::optional<boost::json::value> job_request(photon::Client& client, boost::json::object request,
                                              std::string& reason) {
  try {
    return client.request(std::move(request));
  } catch (const ClientError& error) {
    if (error.kind() != ClientError::Kind::kRefused) throw;
    reason = error.what();
    return std::nullopt;
  }
}

void check_job_id(const std::string& job_id) {
  if (job_id.empty()) throw UsageError("JOBID must not be empty");
}

int cmd_jobs(const Globals& globals, const std::string& name) {
  const boost::json::value data = connect(name).request({{"type", "list_jobs"}});
  if (globals.json) {
    print_json(data);
    return kExitOk;
  }
  const boost::json::array& jobs = data.at("jobs").as_array();
  if (jobs.empty()) {
    std::cout << "no jobs on " << name << "\n";
    return kExitOk;
  }
  constexpr std::size_t kErrorWidth = 40;
  photon::cli::Table table({"ID", "CRON", "METHOD", "NEXT RUN", "LAST RUN", "RUNS", "LAST STATUS"});
  for (const auto& entry : jobs) {
    const boost::json::object& job = entry.as_object();
    std::string cron(text_field(job, "cron"));
    if (const auto zone = text_field(job, "timezone"); !zone.empty()) {
      cron += " (" + std::string(zone) + ")";
    }
    const boost::json::value& next = job.at("nextRun");
    const boost::json::value& last = job.at("lastRun");
    std::string status(text_field(job, "lastStatus"));
    if (const auto error = text_field(job, "lastError"); !error.empty()) {
      status += ": " + one_line(error, kErrorWidth);
    }
    table.add_row({std::string(text_field(job, "id")), cron, std::string(text_field(job, "method")),
                   next.is_number() ? local_time_from_now(next) : "never",
                   last.is_number() ? from_now(std::chrono::system_clock::time_point{
                                          std::chrono::milliseconds(last.to_number<long long>())})
                                    : "never",
                   boost::json::serialize(job.at("runCount")), status.empty() ? "-" : status});
  }
  table.print(std::cout);
  return kExitOk;
}

// What `schedule` asks for, as the command line gives it.
struct ScheduleFlags {
  std::string job_id;
  std::string method;
  std::string cron;
  std::vector<std::string> pairs;
  std::optional<std::string> args_json;
  std::optional<std::string> zone;
  std::optional<std::string> catch_up;
  std::optional<std::string> overlap;
};

int cmd_schedule(const Globals& globals, const std::string& name, const ScheduleFlags& flags) {
  check_name(name);
  check_job_id(flags.job_id);
  if (flags.method.empty()) throw UsageError("METHOD must not be empty");
  boost::json::object request{{"type", "schedule"},
                              {"jobId", flags.job_id},
                              {"method", flags.method},
                              {"cron", flags.cron}};
  if (flags.args_json || !flags.pairs.empty()) {
    request["args"] = call_args(flags.pairs, flags.args_json);
  }
  if (flags.zone) request["timezone"] = *flags.zone;
  if (flags.catch_up) request["catchUp"] = *flags.catch_up;
  if (flags.overlap) request["overlap"] = *flags.overlap;
  photon::Client client = connect(name);
  std::string reason;
  const auto data = job_request(client, std::move(request), reason);
  if (!data) return job_refused(globals, {{"scheduled", false}, {"jobId", flags.job_id}}, reason);
  if (globals.json) {
    print_json(*data);
    return kExitOk;
  }
  const boost::json::value* next = data->as_object().if_contains("nextRun");
  std::cout << "scheduled " << flags.job_id << ": "
            << (next != nullptr && next->is_number() ? "next run " + local_time_from_now(*next)
                                                     : std::string("it has no future run"))
            << "\n";
  return kExitOk;
}

int cmd_unschedule(const Globals& globals, const std::string& name, const std::string& job_id) {
  check_name(name);
  check_job_id(job_id);
  photon::Client client = connect(name);
  std::string reason;
  const auto data = job_request(client, {{"type", "unschedule"}, {"jobId", job_id}}, reason);
  if (!data) return job_refused(globals, {{"unscheduled", false}, {"jobId", job_id}}, reason);
  if (globals.json)
    print_json(*data);
  else
    std::cout << "unscheduled " << job_id << "\n";
  return kExitOk;
}

// The duration of a history entry: "1.2s"-like, "-" for a slot that did not run, "unknown" for a
// run cut short by a crash (its end was never seen), "running".
std::string run_duration(const boost::json::object& run) {
  using photon::core::RunStatus;
  const auto status = photon::core::parse_run_status(text_field(run, "status"));
  if (status == RunStatus::kSkipped || status == RunStatus::kMissed) return "-";
  if (const boost::json::value* interrupted = run.if_contains("interrupted");
      interrupted != nullptr && interrupted->is_bool() && interrupted->get_bool()) {
    return "unknown";
  }
  const boost::json::value* millis = run.if_contains("durationMs");
  if (millis == nullptr || !millis->is_number()) return "running";
  return photon::cli::human_duration(millis->to_number<long long>());
}

int cmd_history(const Globals& globals, const std::string& name, const std::string& job_id,
                int limit) {
  check_name(name);
  check_job_id(job_id);
  const boost::json::value data =
      connect(name).request({{"type", "job_history"}, {"jobId", job_id}, {"limit", limit}});
  if (globals.json) {
    print_json(data);
    return kExitOk;
  }
  const boost::json::array& runs = data.at("runs").as_array();
  if (runs.empty()) {
    std::cout << "no runs of " << job_id << " yet\n";
    return kExitOk;
  }
  constexpr std::size_t kErrorWidth = 100;
  photon::cli::Table table(
      {"RUN", "TRIGGER", "SCHEDULED FOR", "STARTED", "DURATION", "STATUS", "ERROR"});
  for (const auto& entry : runs) {
    const boost::json::object& run = entry.as_object();
    table.add_row({boost::json::serialize(run.at("runId")), std::string(text_field(run, "trigger")),
                   local_time(run.at("scheduledFor")), local_time(run.at("startedAt")),
                   run_duration(run), std::string(text_field(run, "status")),
                   one_line(text_field(run, "error"), kErrorWidth)});
  }
  table.print(std::cout);
  return kExitOk;
}

// Waits for run `run_id` of `job_id` to end (its job-completed or job-failed on `client`, which
// subscribed to the jobs channel before starting it) and reports it. Returns the exit status.
int wait_for_run(const Globals& globals, photon::Client& client, const std::string& job_id,
                 std::uint64_t run_id, std::optional<std::chrono::milliseconds> timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  const std::string run_name = "run " + std::to_string(run_id) + " of " + job_id;
  // The run as its end event tells it; replaced below by its record in the history.
  std::optional<boost::json::object> outcome;
  while (!outcome) {
    const auto left =
        deadline == Clock::time_point::max()
            ? std::chrono::milliseconds(std::chrono::hours(24))
            : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      std::cerr << "photonctl: " << run_name << " still running after "
                << photon::cli::human_duration(timeout->count()) << "\n";
      return kExitFailed;
    }
    const auto message = client.next(left);
    if (!message || !message->message.is_object()) continue;
    const boost::json::object& event = message->message.get_object();
    const std::string_view kind = text_field(event, "event");
    const boost::json::value* data = event.if_contains("data");
    if ((kind != "job-completed" && kind != "job-failed") || data == nullptr ||
        !data->is_object()) {
      continue;
    }
    const boost::json::value* id = data->get_object().if_contains("runId");
    if (text_field(data->get_object(), "jobId") != job_id || id == nullptr || !id->is_number() ||
        id->to_number<std::uint64_t>() != run_id) {
      continue;
    }
    outcome = boost::json::object{
        {"jobId", job_id},
        {"runId", run_id},
        {"status",
         photon::core::to_string(kind == "job-completed" ? photon::core::RunStatus::kOk
                                                         : photon::core::RunStatus::kFailed)},
        {"error", text_field(data->get_object(), "error")}};
  }
  // The record says how the run ended exactly (timed_out, cancelled) and how long it took. It is
  // among the latest runs (the daemon keeps 100 per job), unless the job was unscheduled meanwhile.
  std::string reason;
  if (const auto history = job_request(
          client, {{"type", "job_history"}, {"jobId", job_id}, {"limit", 100}}, reason)) {
    for (const auto& entry : history->at("runs").as_array()) {
      const boost::json::object& run = entry.as_object();
      if (run.at("runId").to_number<std::uint64_t>() != run_id) continue;
      outcome = boost::json::object{{"jobId", job_id}};
      for (const auto& field : run) (*outcome)[field.key()] = field.value();
      break;
    }
  }
  const std::string status(text_field(*outcome, "status"));
  const boost::json::value* millis = outcome->if_contains("durationMs");
  const std::string took =
      millis != nullptr && millis->is_number()
          ? " in " + photon::cli::human_duration(millis->to_number<long long>())
          : "";
  if (globals.json) print_json(*outcome);
  if (photon::core::parse_run_status(status) == photon::core::RunStatus::kOk) {
    if (!globals.json) std::cout << run_name << ": ok" << took << "\n";
    return kExitOk;
  }
  std::cerr << "photonctl: " << run_name << ": " << status << took;
  if (const auto error = text_field(*outcome, "error"); !error.empty()) std::cerr << ": " << error;
  std::cerr << "\n";
  return kExitFailed;
}

int cmd_run_job(const Globals& globals, const std::string& name, const std::string& job_id,
                bool wait, const std::optional<std::string>& timeout_text) {
  check_name(name);
  check_job_id(job_id);
  std::optional<std::chrono::milliseconds> timeout;
  if (timeout_text) {
    if (!wait) throw UsageError("--timeout needs --wait");
    timeout = duration_flag(*timeout_text, "--timeout");
  }
  photon::Client client = connect(name);
  // Subscribed before the run starts, so its end cannot be missed.
  if (wait) client.subscribe("jobs:" + name);
  std::string reason;
  const auto data = job_request(client, {{"type", "run_job"}, {"jobId", job_id}}, reason);
  if (!data) return job_refused(globals, {{"started", false}, {"jobId", job_id}}, reason);
  const std::uint64_t run_id = data->at("runId").to_number<std::uint64_t>();
  if (!wait) {
    if (globals.json)
      print_json(*data);
    else
      std::cout << "started run " << run_id << " of " << job_id << "\n";
    return kExitOk;
  }
  if (!globals.json) std::cout << "started run " << run_id << " of " << job_id << std::endl;
  return wait_for_run(globals, client, job_id, run_id, timeout);
}

// The first word that is not a top-level flag, when it names no command: refused with the
// nearest command, as git and systemctl do, instead of CLI11's "arguments were not expected".
std::optional<int> refuse_unknown_command(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> commands;
  for (const CLI::App* command : app.get_subcommands({})) commands.push_back(command->get_name());
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word.starts_with("-")) {
      if (word == "--json") continue;
      return std::nullopt;  // --help, --version, or CLI11's own error for an unknown flag
    }
    if (std::find(commands.begin(), commands.end(), word) != commands.end()) return std::nullopt;
    std::cerr << "photonctl: unknown command \"" << word << "\"";
    if (auto nearest = photon::cli::nearest_word(word, commands)) {
      std::cerr << "; did you mean " << *nearest << "?";
    }
    std::cerr << "\nRun 'photonctl --help' for the list of commands.\n";
    return kExitUsage;
  }
  return std::nullopt;
}

constexpr const char* kTopLevelFooter =
    "Environment:\n"
    "  PHOTON_DIR         where daemons keep their files (default ~/.photon): daemons/NAME.sock,\n"
    "                     .pid, .log, .db\n"
    "  PHOTON_SESSION_ID  the session call and unlock act as (call's default: the daemon's\n"
    "                     shared \"default\" session)\n"
    "Exit status: 0 ok, 1 refused or failed, 2 usage, 3 daemon not running; lock: its command's\n"
    "status, or 75 when the lock is held by another.\n"
    "Run 'photonctl COMMAND --help' for a command's flags. Documentation: README.md and docs/\n"
    "(protocol.md, methods.md, locks.md, scheduler.md, operations.md...) in the source tree.";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"photonctl: control photon daemons, use their channels, call their methods"};
  app.require_subcommand(1);
  Globals globals;
  app.add_flag("--json", globals.json, "Print JSON for scripts instead of text")
      ->configurable(false);
  app.set_version_flag("--version", std::string("photonctl ") + PHOTON_VERSION);
  app.footer(kTopLevelFooter);
  app.fallthrough();

  std::string name;
  std::string idle_timeout = "10m";
  std::string log_level = "info";
  auto* start =
      app.add_subcommand("start", "Start photon NAME's daemon in the background (if not running)");
  start->add_option("name", name, "Photon name")->required();
  start
      ->add_option("--idle-timeout", idle_timeout,
                   "Daemon exits after this long with no client and no lock held; 0 = never")
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
  bool raw = false;
  auto* pub = app.add_subcommand(
      "pub", "Publish a JSON message on CHANNEL (the argument, or one per line of stdin)");
  pub->add_option("name", name, "Photon name")->required();
  pub->add_option("channel", channel, "Channel name")->required();
  pub->add_option("json", message, "Message as JSON; without it, each line of stdin is a message");
  pub->add_flag("--raw", raw, "Send the text as a JSON string (any text, no JSON needed)");
  pub->footer(
      "Without JSON, each non-blank line of stdin is published as it arrives, on one connection\n"
      "(`tail -f app.log | photonctl pub --raw NAME logs`). A line that is not JSON (without\n"
      "--raw) stops the run with exit 2; the lines before it were published.\n"
      "Exit status: 0 ok, 1 refused, 2 usage or a message that is not JSON, 3 daemon not running.");

  std::vector<std::string> channels;
  std::optional<std::size_t> count;
  std::optional<std::string> timeout;
  auto* sub = app.add_subcommand("sub", "Print each message on CHANNEL... as one JSON line");
  sub->add_option("name", name, "Photon name")->required();
  sub->add_option("channels", channels, "Channels; a trailing * matches a prefix")->required();
  sub->add_option("--count", count,
                  "Exit after this many messages (exit 1 if --timeout comes first)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--timeout", timeout, "Stop after this long (e.g. 5s)");

  std::string lock_name;
  std::string ttl = "30s";
  std::string wait = "10s";
  std::vector<std::string> command;
  auto* lock =
      app.add_subcommand("lock", "Run CMD while holding lock LOCK of photon NAME, like flock(1)");
  lock->add_option("name", name, "Photon name")->required();
  lock->add_option("lock", lock_name, "Lock name")->required();
  lock->add_option("command", command, "The command and its arguments, after --");
  lock->add_option("--ttl", ttl, "Lease, renewed every third of it while CMD runs")
      ->capture_default_str();
  lock->add_option("--wait", wait,
                   "Wait up to this long for a lock another session holds; 0 = fail at once; "
                   "forever (or -1) = no limit, as flock(1) without -w")
      ->capture_default_str();
  lock->footer(
      "Acquires LOCK (waiting up to --wait; while it waits, stderr says once who holds it), runs\n"
      "CMD with PHOTON_LOCK_NAME and PHOTON_LOCK_TOKEN\n"
      "(the fencing token) in its environment, renews the lease every ttl/3 while CMD runs, and\n"
      "releases the lock when CMD ends. The lock also ends if photonctl dies (its connection\n"
      "closes). SIGINT, SIGTERM and SIGHUP sent to photonctl are forwarded to CMD; photonctl then\n"
      "waits for it and releases the lock.\n"
      "If the lease is lost (a renewal refused, or the daemon unreachable), photonctl warns on\n"
      "stderr and lets CMD run on: another process may then hold the lock, which is what the\n"
      "token is for.\n"
      "Exit status: CMD's (128+N when killed by signal N), 75 when the lock was not acquired\n"
      "(the holder is named on stderr), 127 or 126 when CMD cannot be run, 1 on failure, 2 usage,\n"
      "3 daemon not running.");

  auto* locks = app.add_subcommand("locks", "List the locks held on photon NAME");
  locks->add_option("name", name, "Photon name")->required();

  std::optional<std::string> session;
  auto* unlock = app.add_subcommand("unlock", "Release lock LOCK of photon NAME held by a session");
  unlock->add_option("name", name, "Photon name")->required();
  unlock->add_option("lock", lock_name, "Lock name")->required();
  unlock->add_option("--session", session,
                     "Release as this session (default: $PHOTON_SESSION_ID, else photonctl's own)");

  std::string method;
  std::vector<std::string> pairs;
  std::optional<std::string> args_json;
  std::optional<std::string> call_session;
  std::vector<std::string> answers;
  std::optional<std::string> call_timeout;
  auto* call = app.add_subcommand("call", "Call METHOD of photon NAME and print its result");
  call->add_option("name", name, "Photon name")->required();
  call->add_option("method", method, "Method name")->required();
  call->add_option("params", pairs, "Arguments as key=value (value typed as below)");
  call->add_option("--args", args_json, "Arguments as a JSON object; key=value pairs win over it");
  call->add_option("--session", call_session,
                   "Session whose photon instance runs the call (default: $PHOTON_SESSION_ID, "
                   "else the daemon's shared \"default\" session)");
  call->add_option("--answer", answers,
                   "Answer to the next prompt (repeat for each prompt, in order)")
      ->allow_extra_args(false);
  call->add_option("--timeout", call_timeout,
                   "Give up after this long without a result (e.g. 30s); default: wait as long as "
                   "the method runs");
  call->footer(
      "A key=value value that is valid JSON is used as JSON, anything else as a string:\n"
      "taskId=1 is the number 1, done=true a boolean, tags='[\"a\"]' an array, column=Done and\n"
      "column='\"1\"' strings.\n"
      "The result goes to stdout: a string as it is, other JSON indented (compact with --json;\n"
      "nothing for a method that returns nothing, except null with --json). Progress goes to\n"
      "stderr, one line per event (\"… <message>\" or \"… <json>\").\n"
      "Prompts take the --answer values first, in order (for confirm y/yes/true and n/no/false;\n"
      "for select an option's value, label or number; else JSON or a string as above), then ask\n"
      "on the terminal when stdin is one (a password without echo), else are declined (the\n"
      "method receives null) with a note on stderr.\n"
      "Calls without --session or $PHOTON_SESSION_ID share the daemon's \"default\" session, so\n"
      "consecutive calls see the same photon state. When --timeout passes, photonctl exits 1 but\n"
      "the method may still be running.\n"
      "Exit status: 0 ok, 1 the method failed or is unknown (the message on stderr), 2 usage,\n"
      "3 daemon not running.");

  std::size_t log_lines = 50;
  bool follow = false;
  auto* logs = app.add_subcommand("logs", "Print the log of photon NAME's daemon");
  logs->add_option("name", name, "Photon name")->required();
  logs->add_option("-n,--lines", log_lines, "How many of the last lines; 0 = all")
      ->capture_default_str();
  logs->add_flag("-f,--follow", follow,
                 "Keep printing what is appended (across rotations) until interrupted");
  logs->footer(
      "The log is $PHOTON_DIR/daemons/NAME.log (rotated at 10 MiB, 3 kept); a daemon run by "
      "systemd\n"
      "also logs to the journal (journalctl --user -u photond@NAME).\n"
      "Exit status: 0 ok, 1 no log, 2 usage.");

  auto* restart = app.add_subcommand("restart", "Stop photon NAME's daemon and start it again");
  restart->add_option("name", name, "Photon name")->required();
  restart->footer(
      "A daemon started by systemd's socket is stopped, then started by systemd at the next\n"
      "connect; any other is started again, in the background, with the command line and working\n"
      "directory it had (environment: photonctl's, so webhook secrets must be set here).\n"
      "Exit status: 0 restarted, 1 failed, 2 usage, 3 daemon not running.");

  auto* methods = app.add_subcommand("methods", "List the methods of photon NAME");
  methods->add_option("name", name, "Photon name")->required();

  auto* jobs = app.add_subcommand("jobs", "List the cron jobs of photon NAME");
  jobs->add_option("name", name, "Photon name")->required();
  jobs->footer(
      "NEXT RUN is local time with its UTC offset. LAST STATUS is ok, failed, timed_out,\n"
      "cancelled, skipped (the previous run was still running) or missed (the daemon was down),\n"
      "with the error abbreviated. --json prints the daemon's list_jobs data.");

  ScheduleFlags schedule_flags;
  auto* schedule = app.add_subcommand(
      "schedule", "Schedule job JOBID: call METHOD of photon NAME at the times of CRON");
  schedule->add_option("name", name, "Photon name")->required();
  schedule->add_option("job", schedule_flags.job_id, "Job id; a job with this id is replaced")
      ->required();
  schedule->add_option("method", schedule_flags.method, "Method name")->required();
  schedule
      ->add_option("cron", schedule_flags.cron,
                   "Cron expression: 5 fields, or 6 with a leading second field; quote it")
      ->required();
  schedule->add_option("params", schedule_flags.pairs,
                       "Arguments as key=value (typed as for call)");
  schedule->add_option("--args", schedule_flags.args_json,
                       "Arguments as a JSON object; key=value pairs win over it");
  schedule->add_option("--tz", schedule_flags.zone,
                       "IANA time zone of the expression (default: the daemon's local zone)");
  schedule
      ->add_option("--catch-up", schedule_flags.catch_up,
                   "A slot missed while the daemon was down: run once for the latest (latest, "
                   "the default) or skip it")
      ->check(CLI::IsMember({"latest", "skip"}));
  schedule
      ->add_option("--overlap", schedule_flags.overlap,
                   "A slot due while the previous run still runs: skip it (the default) or "
                   "allow a second run")
      ->check(CLI::IsMember({"skip", "allow"}));
  schedule->footer(
      "Each run calls METHOD in session \"scheduler\"; runs are announced on channel jobs:NAME\n"
      "(job-started, job-completed, job-failed, job-skipped). `photonctl cron EXPR` shows when an\n"
      "expression fires. Jobs persist across daemon restarts.\n"
      "Exit status: 0 scheduled, 1 refused (bad expression, zone or method; a job the photon\n"
      "declares), 2 usage, 3 daemon not running.");

  std::string job_id;
  auto* unschedule = app.add_subcommand("unschedule", "Remove job JOBID of photon NAME");
  unschedule->add_option("name", name, "Photon name")->required();
  unschedule->add_option("job", job_id, "Job id")->required();
  unschedule->footer(
      "Exit status: 0 removed, 1 refused (no such job, or one the photon declares), 2 usage,\n"
      "3 daemon not running. A run in progress finishes.");

  int history_limit = 20;
  auto* history = app.add_subcommand("history", "Show the latest runs of job JOBID, newest first");
  history->add_option("name", name, "Photon name")->required();
  history->add_option("job", job_id, "Job id")->required();
  history->add_option("-n,--limit", history_limit, "How many runs")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  history->footer(
      "TRIGGER is schedule, catch-up (once for a slot missed while the daemon was down) or manual\n"
      "(run-job); times are local time. Exit status: 0 ok, 1 no such job, 2 usage, 3 daemon not\n"
      "running.");

  bool run_wait = false;
  std::optional<std::string> run_timeout;
  auto* run_job = app.add_subcommand("run-job", "Run job JOBID of photon NAME now");
  run_job->add_option("name", name, "Photon name")->required();
  run_job->add_option("job", job_id, "Job id")->required();
  run_job->add_flag("--wait", run_wait, "Wait for the run to end and report how it went");
  run_job->add_option("--timeout", run_timeout, "With --wait: give up after this long (e.g. 5m)");
  run_job->footer(
      "The run is recorded with trigger \"manual\". A job whose overlap is skip is refused while\n"
      "it runs.\n"
      "Exit status: 0 started (with --wait: ended ok), 1 refused, or with --wait failed, timed\n"
      "out or still running at --timeout, 2 usage, 3 daemon not running.");

  photon::cli::CronCommand cron(app);

  photon::cli::WebhookCommands webhooks(app);

  photon::cli::UiCommand ui(app);

  photon::cli::ServiceCommand service(app);

  if (auto refused = refuse_unknown_command(app, argc, argv)) return *refused;
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
    if (*pub) return cmd_pub(globals, name, channel, message, raw);
    if (*sub) return cmd_sub(name, channels, count, timeout);
    if (*lock) return cmd_lock(name, lock_name, ttl, wait, command);
    if (*locks) return cmd_locks(globals, name);
    if (*unlock) return cmd_unlock(globals, name, lock_name, session);
    if (*call) {
      return cmd_call(globals, name, method, pairs, args_json, call_session, answers, call_timeout);
    }
    if (*methods) return cmd_methods(globals, name);
    if (*logs) return cmd_logs(name, log_lines, follow);
    if (*restart) return cmd_restart(globals, name);
    if (service) return service.run(globals.json, photond_program());
    if (*jobs) return cmd_jobs(globals, name);
    if (*schedule) return cmd_schedule(globals, name, schedule_flags);
    if (*unschedule) return cmd_unschedule(globals, name, job_id);
    if (*history) return cmd_history(globals, name, job_id, history_limit);
    if (*run_job) return cmd_run_job(globals, name, job_id, run_wait, run_timeout);
    if (cron) return cron.run(globals.json);
    if (webhooks) return webhooks.run(globals.json);
    if (ui) return ui.run(globals.json);
  } catch (const UsageError& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitUsage;
  } catch (const photon::cli::AnswerError& error) {
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
