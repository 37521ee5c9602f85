// Child processes spawned with posix_spawn and watched with asio.
//
// Why not Boost.Process v2 (Boost 1.81), which DESIGN.md names: its POSIX launcher closes the
// wrong descriptors (close_handles.ipp compares each whitelisted fd with itself, so every fd from
// 3 up to its error pipe that lacks FD_CLOEXEC leaks into the child: we saw it), it forks the
// whole daemon and re-registers every descriptor of the io_context in the child before exec
// (notify_fork), and its error_code overload for an execution context throws. posix_spawn does
// what we need in one call, vfork-fast: process group (POSIX_SPAWN_SETPGROUP), working directory
// (addchdir_np), no inherited descriptors (addclosefrom_np), default signal dispositions, and
// exec errors reported to the parent. Exit is watched the way Boost.Process v2 does it on Linux:
// a pidfd in an asio descriptor.
#include "methods/child_process.hpp"

#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace photon::core {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using boost::system::error_code;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kStderrChunk = 16 * 1024;
constexpr std::chrono::milliseconds kExitPollInterval{20};

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

std::optional<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string errno_text(int error) { return std::generic_category().message(error); }

}  // namespace

std::optional<std::string> find_program(const std::string& name, const fs::path& working_dir,
                                        std::string_view path) {
  if (name.find('/') != std::string::npos) {
    const fs::path program(name);
    return (program.is_absolute() ? program : working_dir / program).string();
  }
  while (true) {
    const auto colon = path.find(':');
    const std::string_view entry = path.substr(0, colon);
    fs::path dir = entry.empty() ? working_dir : fs::path(entry);
    if (dir.is_relative()) dir = working_dir / dir;
    const std::string candidate = (dir / name).string();
    struct stat info {};
    if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) return std::nullopt;
    path.remove_prefix(colon + 1);
  }
}

ChildProcess::ChildProcess(asio::io_context& loop)
    : stdin_(loop), stdout_(loop), stderr_(loop), pidfd_(loop), exit_poll_(loop) {}

std::optional<ChildProcess::SpawnError> ChildProcess::spawn(const ChildSpec& spec) {
  auto in = make_pipe();
  auto out = make_pipe();
  auto err = make_pipe();
  if (!in || !out || !err) return SpawnError{"cannot create a pipe: " + errno_text(errno)};

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  ::posix_spawn_file_actions_adddup2(&actions, in->read.get(), STDIN_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, out->write.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err->write.get(), STDERR_FILENO);
  ::posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  sigset_t all;
  sigset_t none;
  ::sigfillset(&all);
  ::sigemptyset(&none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> argv_ptrs;
  for (const std::string& arg : spec.argv) argv_ptrs.push_back(const_cast<char*>(arg.c_str()));
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (const std::string& entry : spec.env) env_ptrs.push_back(const_cast<char*>(entry.c_str()));
  env_ptrs.push_back(nullptr);

  pid_t pid = -1;
  const int error =
      ::posix_spawn(&pid, spec.program.c_str(), &actions, &attr, argv_ptrs.data(), env_ptrs.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (error != 0) return SpawnError{errno_text(error)};

  set_nonblocking(in->write.get());
  set_nonblocking(out->read.get());
  set_nonblocking(err->read.get());
  pid_ = pid;
  close_stdin_when_written_ = spec.close_stdin_when_written;
  error_code ec;
  auto adopt = [&ec](asio::posix::stream_descriptor& descriptor, Fd& fd) {
    if (!ec) descriptor.assign(fd.get(), ec);
    if (!ec) fd.release();
  };
  adopt(stdin_, in->write);
  adopt(stdout_, out->read);
  adopt(stderr_, err->read);
  if (ec) {
    kill_and_reap();
    return SpawnError{ec.message(), true};
  }
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  if (pidfd.get() >= 0) adopt(pidfd_, pidfd);  // on failure: polled
  stdout_buffer_.resize(kReadChunk);
  stderr_buffer_.resize(kStderrChunk);
  return std::nullopt;
}

// --- stdin

void ChildProcess::write_stdin(std::string bytes) {
  if (!stdin_.is_open()) return;
  stdin_queue_.push_back(std::move(bytes));
  if (!writing_) write_next();
}

void ChildProcess::write_next() {
  if (stdin_queue_.empty()) {
    if (close_stdin_when_written_) close_stdin();
    return;
  }
  writing_ = true;
  asio::async_write(stdin_, asio::buffer(stdin_queue_.front()),
                    [self = shared_from_this()](error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (ec) {
                        // The child closed its stdin or exited: it wants no more input.
                        self->close_stdin();
                        return;
                      }
                      self->stdin_queue_.pop_front();
                      self->write_next();
                    });
}

void ChildProcess::close_stdin() {
  error_code ignored;
  stdin_.close(ignored);
  // A pending write still refers to the front element until its handler runs.
  if (!writing_) stdin_queue_.clear();
}

// --- stdout and stderr

void ChildProcess::read_stdout(ReadHandler handler) {
  read(stdout_, stdout_buffer_, std::move(handler));
}

void ChildProcess::read_stderr(ReadHandler handler) {
  read(stderr_, stderr_buffer_, std::move(handler));
}

void ChildProcess::read(asio::posix::stream_descriptor& pipe, std::vector<char>& buffer,
                        ReadHandler handler) {
  pipe.async_read_some(asio::buffer(buffer),
                       [self = shared_from_this(), &pipe, &buffer, handler = std::move(handler)](
                           error_code ec, std::size_t size) {
                         handler(ec, std::string_view(buffer.data(), size));
                         // Nothing more will be read into it.
                         if (ec || !pipe.is_open()) buffer = std::vector<char>();
                       });
}

void ChildProcess::close_stdout() {
  error_code ignored;
  stdout_.close(ignored);
}

void ChildProcess::close_stderr() {
  error_code ignored;
  stderr_.close(ignored);
}

// --- exit

void ChildProcess::wait_exit(std::function<void(std::optional<int>)> handler) {
  watch_exit(std::make_shared<std::function<void(std::optional<int>)>>(std::move(handler)));
}

void ChildProcess::watch_exit(std::shared_ptr<std::function<void(std::optional<int>)>> handler) {
  if (pidfd_.is_open()) {
    pidfd_.async_wait(asio::posix::descriptor_base::wait_read,
                      [self = shared_from_this(), handler](error_code ec) {
                        if (self->exited_) return;
                        if (ec) {
                          // Not expected; polling still works.
                          error_code ignored;
                          self->pidfd_.close(ignored);
                        }
                        self->check_exit(handler);
                      });
    return;
  }
  exit_poll_.expires_after(kExitPollInterval);
  exit_poll_.async_wait([self = shared_from_this(), handler](error_code ec) {
    if (!ec && !self->exited_) self->check_exit(handler);
  });
}

void ChildProcess::check_exit(std::shared_ptr<std::function<void(std::optional<int>)>> handler) {
  siginfo_t info{};
  // WNOWAIT: the zombie keeps the process group id reserved while we kill what is left in it.
  const int waited = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
  error_code ignored;
  if ((waited == 0 && info.si_pid == 0) || (waited != 0 && errno == EINTR)) {
    // Still running though woken: the pidfd's edge is spent, so poll from now on.
    pidfd_.close(ignored);
    return watch_exit(std::move(handler));
  }
  std::optional<int> status;
  if (waited == 0) {
    ::kill(-pid_, SIGKILL);
    int wait_status = 0;
    if (::waitpid(pid_, &wait_status, WNOHANG) == pid_) status = wait_status;
  }
  // Without a status (ECHILD: someone else reaped our child) it stays empty.
  exited_ = true;
  pidfd_.close(ignored);
  exit_poll_.cancel();
  (*handler)(status);
}

void ChildProcess::signal(int signo) {
  if (exited_ || pid_ <= 0) return;
  ::kill(-pid_, signo);
  ::kill(pid_, signo);  // in case the child left its group
}

void ChildProcess::kill_and_reap() {
  if (!exited_ && pid_ > 0) {
    signal(SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  exited_ = true;
  error_code ignored;
  stdin_.close(ignored);
  stdout_.close(ignored);
  stderr_.close(ignored);
  pidfd_.close(ignored);
  exit_poll_.cancel();
}

}  // namespace photon::core
