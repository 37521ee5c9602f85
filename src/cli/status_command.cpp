// photonctl status [NAME]: the status request printed as a report (or as JSON), the list of every
// daemon's socket under $PHOTON_DIR, and what a daemon that is not running left behind.
#include "cli/status_command.hpp"

#include "cli/connect.hpp"
#include "cli/exit_codes.hpp"
#include "cli/print.hpp"
#include "cli/table.hpp"
#include "common/paths.hpp"
#include "photon/client.hpp"

#include <boost/json.hpp>

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace photon::cli {
namespace {

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

}  // namespace

void add_status_command(CommandLine& cli) {
  auto* status = cli.add("status", "Show one daemon's status, or list every daemon",
                         [&cli] { return cmd_status(cli.globals(), cli.name()); });
  status->add_option("name", cli.name(), "Photon name (omit to list all under $PHOTON_DIR)");
}

}  // namespace photon::cli
