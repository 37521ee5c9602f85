// Exec photons: one child process per call (methods/child_process.hpp); the call speaks the
// protocol with it (arguments on stdin, emit/prompt/result/error lines on stdout), bounds its
// output, and turns its exit, timeout or cancellation into the call's outcome.
#include "methods/exec_host.hpp"

#include "common/utf8.hpp"
#include "methods/child_process.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace photon::core {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

constexpr std::size_t kStderrTail = 2048;
constexpr std::string_view kShuttingDown = "the daemon is shutting down";

// The variables the daemon sets for every call; inherited values of these never reach a child.
constexpr std::array<std::string_view, 5> kPhotonEnv = {
    "PHOTON_NAME", "PHOTON_METHOD", "PHOTON_SESSION_ID", "PHOTON_CLIENT_TYPE", "PHOTON_SOCKET"};

// "30 s", "250 ms", "5 min": how timeouts read in messages.
std::string duration_text(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms >= 60'000 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + " min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  const auto begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

// What systemd tells the daemon alone (its notify socket, watchdog, activated sockets): a method
// child that saw them could report readiness or keep-alives for the daemon.
constexpr std::array<std::string_view, 6> kServiceManagerEnv = {
    "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"};

// The child's environment: the daemon's (less the service manager's variables), then the
// manifest's, then the PHOTON_* variables.
std::vector<std::string> child_environment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  auto overridden = [&](std::string_view name) {
    return std::any_of(overrides.begin(), overrides.end(),
                       [&](const auto& entry) { return entry.first == name; }) ||
           std::find(kPhotonEnv.begin(), kPhotonEnv.end(), name) != kPhotonEnv.end() ||
           std::find(kServiceManagerEnv.begin(), kServiceManagerEnv.end(), name) !=
               kServiceManagerEnv.end();
  };
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (!overridden(text.substr(0, text.find('=')))) env.emplace_back(text);
  }
  for (const auto& [name, value] : overrides) env.push_back(name + "=" + value);
  return env;
}

}  // namespace

// One call: its child, its timers, what its stdout said so far.
// Invariants: the outcome is delivered once, after the child was reaped and its stdout and stderr
// were read to the end (or abandoned); after abandon() (host destroyed) handlers only return.
class ExecHost::Call : public std::enable_shared_from_this<Call> {
 public:
  Call(ExecHost& host, std::uint64_t id, std::size_t method_index,
       std::shared_ptr<CallObserver> observer)
      : host_(&host),
        id_(id),
        method_index_(method_index),
        name_(host.manifest_.methods[method_index].info.name),
        interactive_(host.manifest_.methods[method_index].interactive),
        max_output_(host.options_.max_output_bytes),
        kill_grace_(host.options_.kill_grace),
        observer_(std::move(observer)),
        child_(std::make_shared<ChildProcess>(host.loop_)),
        deadline_(host.loop_),
        grace_(host.loop_),
        drain_(host.loop_) {}

  std::uint64_t id() const { return id_; }
  std::size_t method_index() const { return method_index_; }
  std::shared_ptr<CallObserver> take_observer() { return std::move(observer_); }

  // Spawns the child and starts watching it. Returns what went wrong if it could not start.
  std::optional<std::string> launch(const CallRequest& request) {
    const ExecHostOptions& options = host_->options_;
    const ExecMethod& method = host_->manifest_.methods[method_index_];

    auto overrides = method.env;
    overrides.emplace_back("PHOTON_NAME", options.photon_name);
    overrides.emplace_back("PHOTON_METHOD", name_);
    overrides.emplace_back("PHOTON_SESSION_ID", request.session_id);
    if (!request.client_type.empty()) {
      overrides.emplace_back("PHOTON_CLIENT_TYPE", request.client_type);
    }
    overrides.emplace_back("PHOTON_SOCKET", options.socket.string());
    std::string path = "/usr/local/bin:/usr/bin:/bin";
    if (const char* inherited = std::getenv("PATH")) path = inherited;
    for (const auto& [name, value] : method.env) {
      if (name == "PATH") path = value;
    }

    const std::string& argv0 = method.argv.front();
    const auto program = find_program(argv0, method.working_dir, path);
    if (!program) return "cannot start method " + name_ + ": " + argv0 + " not found in PATH";
    if (auto error = child_->spawn({.program = *program,
                                    .argv = method.argv,
                                    .env = child_environment(overrides),
                                    .working_dir = method.working_dir,
                                    .close_stdin_when_written = !interactive_})) {
      if (error->started) {
        abandon();
        return "cannot watch method " + name_ + ": " + error->message;
      }
      return "cannot start method " + name_ + ": " + argv0 + " (in " + method.working_dir.string() +
             "): " + error->message;
    }
    read_stdout();
    read_stderr();
    watch_exit();
    deadline_.expires_after(method.timeout);
    deadline_.async_wait([self = shared_from_this(), timeout = method.timeout](error_code ec) {
      if (ec || self->abandoned_ || self->child_->exited()) return;
      spdlog::warn("method {} (pid {}) timed out after {}; stopping it", self->name_,
                   self->child_->pid(), duration_text(timeout));
      self->stop(CallStatus::kTimedOut,
                 "method " + self->name_ + " timed out after " + duration_text(timeout), false);
    });
    write_stdin(boost::json::serialize(request.args) + "\n");
    return std::nullopt;
  }

  // Decides the outcome now and stops the child: SIGTERM then SIGKILL after the grace, or
  // SIGKILL at once. The first decision wins.
  void stop(CallStatus status, std::string message, bool kill_now) {
    if (finished_ || stopped_) return;
    stopped_ = CallOutcome::failure(status, std::move(message));
    plain_ = std::string();
    line_ = std::string();
    close_stdin();
    deadline_.cancel();
    if (child_->exited()) {
      // Only the pipes are left: stop waiting for them.
      close_output();
      return;
    }
    if (kill_now) {
      child_->signal(SIGKILL);
      child_->close_stdout();
      return;
    }
    child_->signal(SIGTERM);
    grace_.expires_after(kill_grace_);
    grace_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec && !self->abandoned_ && !self->child_->exited()) self->child_->signal(SIGKILL);
    });
  }

  // cancel_all: the daemon is shutting down.
  void cancel() {
    stop(CallStatus::kCancelled,
         "method " + name_ + " was cancelled: " + std::string(kShuttingDown), false);
  }

  // The host is going away (or the child cannot be watched): kill and reap now, deliver nothing
  // more.
  void abandon() {
    abandoned_ = true;
    host_ = nullptr;
    observer_.reset();
    child_->kill_and_reap();
    deadline_.cancel();
    grace_.cancel();
    drain_.cancel();
  }

 private:
  // --- stdin ---

  void write_stdin(std::string line) { child_->write_stdin(std::move(line)); }

  void close_stdin() { child_->close_stdin(); }

  void answer(std::optional<boost::json::value> value) {
    if (finished_ || stopped_ || abandoned_) return;
    write_stdin(boost::json::serialize(value ? *value : boost::json::value(nullptr)) + "\n");
  }

  // --- stdout and stderr ---

  void read_stdout() {
    child_->read_stdout([self = shared_from_this()](error_code ec, std::string_view data) {
      if (self->abandoned_) return;
      if (!data.empty() && !self->stopped_) self->on_stdout(data);
      if (ec || !self->child_->stdout_open()) {
        self->stdout_done();
        return;
      }
      self->read_stdout();
    });
  }

  void stdout_done() {
    child_->close_stdout();
    if (!line_.empty() && !stopped_) {
      // A last line without a newline counts like any other.
      std::string last = std::move(line_);
      line_.clear();
      handle_line(last);
    }
    stdout_open_ = false;
    maybe_finish();
  }

  void read_stderr() {
    child_->read_stderr([self = shared_from_this()](error_code ec, std::string_view data) {
      if (self->abandoned_) return;
      self->stderr_tail_.append(data);
      if (self->stderr_tail_.size() > 2 * kStderrTail) {
        self->stderr_tail_.erase(0, self->stderr_tail_.size() - kStderrTail);
      }
      if (ec) {
        self->child_->close_stderr();
        self->stderr_open_ = false;
        self->maybe_finish();
        return;
      }
      self->read_stderr();
    });
  }

  void close_output() {
    child_->close_stdout();
    child_->close_stderr();
  }

  // Splits stdout into lines; the memory kept is bounded by max_output_ twice (plain output and
  // the line being assembled).
  void on_stdout(std::string_view data) {
    while (!data.empty() && !stopped_) {
      const auto newline = data.find('\n');
      if (newline == std::string_view::npos) {
        if (line_.size() + data.size() > max_output_) return exceeded();
        line_.append(data);
        return;
      }
      const std::string_view piece = data.substr(0, newline + 1);
      data.remove_prefix(newline + 1);
      if (line_.empty()) {
        handle_line(piece);
      } else {
        if (line_.size() + piece.size() > max_output_) return exceeded();
        line_.append(piece);
        std::string line = std::move(line_);
        line_.clear();
        handle_line(line);
      }
    }
  }

  void exceeded() {
    stop(CallStatus::kFailed,
         "output of method " + name_ + " exceeded " + std::to_string(max_output_) + " bytes", true);
  }

  void handle_line(std::string_view line) {
    if (stopped_) return;
    if (handle_protocol(line)) return;
    if (plain_.size() + line.size() > max_output_) return exceeded();
    plain_.append(line);
  }

  // A line that is a JSON object with exactly one of emit, prompt, result, error (emit and
  // prompt holding objects) is protocol; anything else is plain output.
  bool handle_protocol(std::string_view line) {
    const std::string_view text = trim(line);
    if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
    error_code ec;
    boost::json::value parsed = boost::json::parse(text, ec);
    if (ec || !parsed.is_object() || parsed.as_object().size() != 1) return false;
    auto& [key, value] = *parsed.as_object().begin();
    if (key == "emit") {
      if (!value.is_object()) return false;
      if (observer_) observer_->on_emit(std::move(value.as_object()));
    } else if (key == "prompt") {
      if (!value.is_object()) return false;
      prompt(std::move(value.as_object()));
    } else if (key == "result") {
      if (!result_ && !error_) result_ = std::move(value);
    } else if (key == "error") {
      if (!result_ && !error_) {
        error_ = value.is_string() ? std::string(value.as_string()) : boost::json::serialize(value);
      }
    } else {
      return false;
    }
    return true;
  }

  void prompt(boost::json::object question) {
    if (!interactive_) {
      stop(CallStatus::kFailed,
           "method " + name_ +
               " prompted its caller but is not interactive: set interactive = true for it in "
               "the manifest",
           false);
      return;
    }
    if (!observer_) return;
    std::weak_ptr<Call> weak = weak_from_this();
    observer_->on_prompt(std::move(question), [weak](std::optional<boost::json::value> value) {
      if (auto self = weak.lock()) self->answer(std::move(value));
    });
  }

  // --- exit ---

  void watch_exit() {
    child_->wait_exit([self = shared_from_this()](std::optional<int> status) {
      if (!self->abandoned_) self->child_exited(status);
    });
  }

  // The child was reaped (its group killed): only its pipes may be left.
  void child_exited(std::optional<int> status) {
    // Without a status (someone else reaped our child) status_ stays empty.
    status_ = status;
    deadline_.cancel();
    grace_.cancel();
    close_stdin();
    if (stdout_open_ || stderr_open_) {
      // The group is dead; a process that left it may still hold our pipes.
      drain_.expires_after(kill_grace_);
      drain_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec && !self->abandoned_) self->close_output();
      });
    }
    maybe_finish();
  }

  // --- the end ---

  void maybe_finish() {
    if (finished_ || abandoned_ || !child_->exited() || stdout_open_ || stderr_open_) return;
    finished_ = true;
    drain_.cancel();
    host_->call_finished(*this, outcome());
  }

  CallOutcome outcome() {
    if (stopped_) return std::move(*stopped_);
    if (!status_) {
      return CallOutcome::failure(CallStatus::kFailed,
                                  "method " + name_ + " ended but its exit status was lost");
    }
    if (error_) return CallOutcome::failure(CallStatus::kFailed, std::move(*error_));
    const int status = *status_;
    if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
      std::string message = "method " + name_;
      if (WIFSIGNALED(status)) {
        const int signo = WTERMSIG(status);
        const char* description = ::sigdescr_np(signo);
        message += " killed by signal " + std::to_string(signo) + " (" +
                   (description != nullptr ? description : "unknown") + ")";
      } else {
        message += " exited with status " + std::to_string(WEXITSTATUS(status));
      }
      const std::string_view tail = trim(
          std::string_view(stderr_tail_)
              .substr(stderr_tail_.size() > kStderrTail ? stderr_tail_.size() - kStderrTail : 0));
      if (!tail.empty()) message += ": " + valid_utf8(tail);
      return CallOutcome::failure(CallStatus::kFailed, std::move(message));
    }
    if (result_) return CallOutcome::success(std::move(*result_));
    return CallOutcome::success(plain_result());
  }

  // Without a result line: the plain output as JSON when it is JSON, else as a string.
  boost::json::value plain_result() const {
    const std::string_view text = trim(plain_);
    if (text.empty()) return nullptr;
    error_code ec;
    boost::json::value parsed = boost::json::parse(text, ec);
    if (!ec) return parsed;
    std::string_view raw = plain_;
    while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.remove_suffix(1);
    return boost::json::string(valid_utf8(raw));
  }

  ExecHost* host_;
  const std::uint64_t id_;
  const std::size_t method_index_;
  const std::string name_;
  const bool interactive_;
  const std::size_t max_output_;
  const std::chrono::milliseconds kill_grace_;
  std::shared_ptr<CallObserver> observer_;

  std::shared_ptr<ChildProcess> child_;
  std::optional<int> status_;  // wait status, when reaped here
  bool stdout_open_ = true;
  bool stderr_open_ = true;
  bool finished_ = false;               // outcome delivered
  bool abandoned_ = false;              // the host is gone
  std::optional<CallOutcome> stopped_;  // the outcome stop() decided

  asio::steady_timer deadline_;  // the method's timeout
  asio::steady_timer grace_;     // SIGTERM sent: SIGKILL when this expires
  asio::steady_timer drain_;     // child exited: stop waiting for its pipes when this expires

  std::string line_;         // stdout since the last newline
  std::string plain_;        // stdout lines that were not protocol
  std::string stderr_tail_;  // the last bytes of stderr (up to twice kStderrTail)
  std::optional<boost::json::value> result_;
  std::optional<std::string> error_;
};

ExecHost::ExecHost(asio::io_context& loop, Manifest manifest, ExecHostOptions options)
    : loop_(loop), manifest_(std::move(manifest)), options_(std::move(options)) {
  for (std::size_t i = 0; i < manifest_.methods.size(); ++i) {
    infos_.push_back(manifest_.methods[i].info);
    by_name_.emplace(manifest_.methods[i].info.name, i);
  }
  running_per_method_.assign(manifest_.methods.size(), 0);
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
}

ExecHost::~ExecHost() {
  for (auto& [id, call] : calls_) call->abandon();
}

void ExecHost::start(CallRequest request, std::shared_ptr<CallObserver> observer) {
  if (cancelling_) {
    return post_outcome(std::move(observer),
                        CallOutcome::failure(CallStatus::kCancelled, std::string(kShuttingDown)));
  }
  const auto found = by_name_.find(request.method);
  if (found == by_name_.end()) {
    return post_outcome(
        std::move(observer),
        CallOutcome::failure(CallStatus::kFailed, "unknown method \"" + request.method + "\""));
  }
  const std::size_t index = found->second;
  const ExecMethod& method = manifest_.methods[index];
  if (method.max_concurrent != 0 && running_per_method_[index] >= method.max_concurrent) {
    spdlog::debug("method {} refused: max_concurrent {} reached", method.info.name,
                  method.max_concurrent);
    return post_outcome(std::move(observer),
                        CallOutcome::failure(CallStatus::kBusy,
                                             "method " + method.info.name + " is already running " +
                                                 std::to_string(running_per_method_[index]) +
                                                 " times (max_concurrent " +
                                                 std::to_string(method.max_concurrent) + ")"));
  }
  if (calls_.size() >= options_.max_running) {
    spdlog::debug("method {} refused: {} methods running", method.info.name, calls_.size());
    return post_outcome(
        std::move(observer),
        CallOutcome::failure(CallStatus::kBusy, std::to_string(calls_.size()) +
                                                    " methods are running already (limit " +
                                                    std::to_string(options_.max_running) + ")"));
  }
  auto call = std::make_shared<Call>(*this, next_call_id_++, index, observer);
  if (auto error = call->launch(request)) {
    spdlog::warn("{}", *error);
    return post_outcome(std::move(observer), CallOutcome::failure(CallStatus::kFailed, *error));
  }
  ++running_per_method_[index];
  calls_.emplace(call->id(), std::move(call));
}

HostStats ExecHost::stats() const { return HostStats{calls_.size(), 0}; }

void ExecHost::cancel_all(std::function<void()> done) {
  cancelling_ = true;
  on_idle_.push_back(std::move(done));
  for (auto& [id, call] : calls_) call->cancel();
  post_done_if_idle();
}

void ExecHost::post_outcome(std::shared_ptr<CallObserver> observer, CallOutcome outcome) {
  asio::post(loop_, [alive = std::weak_ptr<char>(alive_), observer = std::move(observer),
                     outcome = std::move(outcome)]() mutable {
    if (alive.lock() && observer) observer->on_finish(std::move(outcome));
  });
}

void ExecHost::call_finished(Call& call, CallOutcome outcome) {
  --running_per_method_[call.method_index()];
  std::shared_ptr<CallObserver> observer = call.take_observer();
  calls_.erase(call.id());  // the handler running this holds the call
  if (observer) observer->on_finish(std::move(outcome));
  post_done_if_idle();
}

void ExecHost::post_done_if_idle() {
  if (!calls_.empty() || on_idle_.empty()) return;
  for (auto& done : std::exchange(on_idle_, {})) {
    asio::post(loop_, [alive = std::weak_ptr<char>(alive_), done = std::move(done)] {
      if (alive.lock() && done) done();
    });
  }
}

}  // namespace photon::core
