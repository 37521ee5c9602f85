// The daemon's life from the command line: start it detached (photond serve --detach) and wait
// until it answers, stop it and wait until its pid file is gone, restart it as it was started,
// ping it, and print (and follow) its log.
#include "cli/daemon_command.hpp"

#include "cli/connect.hpp"
#include "cli/exit_codes.hpp"
#include "cli/print.hpp"
#include "common/paths.hpp"
#include "photon/client.hpp"

#include <boost/json.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace photon::cli {
namespace {

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

}  // namespace

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

void add_start_command(CommandLine& cli) {
  struct Options {
    std::string idle_timeout = "10m";
    std::string log_level = "info";
  };
  auto options = std::make_shared<Options>();
  auto* start = cli.add(
      "start", "Start photon NAME's daemon in the background (if not running)", [&cli, options] {
        return cmd_start(cli.globals(), cli.name(), options->idle_timeout, options->log_level);
      });
  start->add_option("name", cli.name(), "Photon name")->required();
  start
      ->add_option("--idle-timeout", options->idle_timeout,
                   "Daemon exits after this long with no client and no lock held; 0 = never")
      ->capture_default_str();
  start->add_option("--log-level", options->log_level, "Daemon log level")->capture_default_str();
}

void add_stop_command(CommandLine& cli) {
  auto* stop = cli.add("stop", "Stop photon NAME's daemon",
                       [&cli] { return cmd_stop(cli.globals(), cli.name()); });
  stop->add_option("name", cli.name(), "Photon name")->required();
}

void add_ping_command(CommandLine& cli) {
  auto* ping = cli.add("ping", "Check that photon NAME's daemon answers",
                       [&cli] { return cmd_ping(cli.globals(), cli.name()); });
  ping->add_option("name", cli.name(), "Photon name")->required();
}

void add_logs_command(CommandLine& cli) {
  struct Options {
    std::size_t lines = 50;
    bool follow = false;
  };
  auto options = std::make_shared<Options>();
  auto* logs = cli.add("logs", "Print the log of photon NAME's daemon", [&cli, options] {
    return cmd_logs(cli.name(), options->lines, options->follow);
  });
  logs->add_option("name", cli.name(), "Photon name")->required();
  logs->add_option("-n,--lines", options->lines, "How many of the last lines; 0 = all")
      ->capture_default_str();
  logs->add_flag("-f,--follow", options->follow,
                 "Keep printing what is appended (across rotations) until interrupted");
  logs->footer(
      "The log is $PHOTON_DIR/daemons/NAME.log (rotated at 10 MiB, 3 kept); a daemon run by "
      "systemd\n"
      "also logs to the journal (journalctl --user -u photond@NAME).\n"
      "Exit status: 0 ok, 1 no log, 2 usage.");
}

void add_restart_command(CommandLine& cli) {
  auto* restart = cli.add("restart", "Stop photon NAME's daemon and start it again",
                          [&cli] { return cmd_restart(cli.globals(), cli.name()); });
  restart->add_option("name", cli.name(), "Photon name")->required();
  restart->footer(
      "A daemon started by systemd's socket is stopped, then started by systemd at the next\n"
      "connect; any other is started again, in the background, with the command line and working\n"
      "directory it had (environment: photonctl's, so webhook secrets must be set here).\n"
      "Exit status: 0 restarted, 1 failed, 2 usage, 3 daemon not running.");
}

}  // namespace photon::cli
