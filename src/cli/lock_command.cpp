// photonctl lock NAME LOCK -- CMD: the lock held (and its lease renewed) while CMD runs, signals
// forwarded to it, and its exit status passed on; photonctl locks and unlock.
#include "cli/lock_command.hpp"

#include "cli/connect.hpp"
#include "cli/exit_codes.hpp"
#include "cli/print.hpp"
#include "cli/table.hpp"
#include "photon/client.hpp"
#include "photon/lock_guard.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace photon::cli {
namespace {

// The protocol's bounds on lockTimeout and lockWait, checked before connecting.
constexpr std::chrono::milliseconds kMaxLockTtl = std::chrono::hours(24 * 7);
constexpr std::chrono::milliseconds kMaxLockWait = std::chrono::hours(24);

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

}  // namespace

void add_lock_command(CommandLine& cli) {
  struct Options {
    std::string lock_name;
    std::string ttl = "30s";
    std::string wait = "10s";
    std::vector<std::string> command;
  };
  auto options = std::make_shared<Options>();
  auto* lock = cli.add("lock", "Run CMD while holding lock LOCK of photon NAME, like flock(1)",
                       [&cli, options] {
                         return cmd_lock(cli.name(), options->lock_name, options->ttl,
                                         options->wait, options->command);
                       });
  lock->add_option("name", cli.name(), "Photon name")->required();
  lock->add_option("lock", options->lock_name, "Lock name")->required();
  lock->add_option("command", options->command, "The command and its arguments, after --");
  lock->add_option("--ttl", options->ttl, "Lease, renewed every third of it while CMD runs")
      ->capture_default_str();
  lock->add_option("--wait", options->wait,
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
}

void add_locks_command(CommandLine& cli) {
  auto* locks = cli.add("locks", "List the locks held on photon NAME",
                        [&cli] { return cmd_locks(cli.globals(), cli.name()); });
  locks->add_option("name", cli.name(), "Photon name")->required();
}

void add_unlock_command(CommandLine& cli) {
  struct Options {
    std::string lock_name;
    std::optional<std::string> session;
  };
  auto options = std::make_shared<Options>();
  auto* unlock =
      cli.add("unlock", "Release lock LOCK of photon NAME held by a session", [&cli, options] {
        return cmd_unlock(cli.globals(), cli.name(), options->lock_name, options->session);
      });
  unlock->add_option("name", cli.name(), "Photon name")->required();
  unlock->add_option("lock", options->lock_name, "Lock name")->required();
  unlock->add_option("--session", options->session,
                     "Release as this session (default: $PHOTON_SESSION_ID, else photonctl's own)");
}

}  // namespace photon::cli
