// photon_bench's plumbing: sockets, line reads, child processes, the echo server, measurements.
#include "bench_support.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

extern char** environ;

namespace photon::bench {

using namespace std::chrono_literals;

namespace {

constexpr auto kSocketTimeout = 10s;

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) throw BenchError("socket path too long: " + path);
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

void fail_errno(const std::string& what) { throw BenchError(what + ": " + std::strerror(errno)); }

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Fd try_connect(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) fail_errno("socket");
  const sockaddr_un address = unix_address(path);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED || errno == EAGAIN) return Fd{};
    fail_errno("connect " + path);
  }
  const timeval timeout{std::chrono::seconds(kSocketTimeout).count(), 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  return fd;
}

Fd connect_to(const std::string& path) {
  Fd fd = try_connect(path);
  if (!fd.valid()) throw BenchError("nobody listens on " + path);
  return fd;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) throw BenchError("write timed out");
      fail_errno("write");
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
}

std::optional<std::string_view> LineReader::read_line() {
  for (;;) {
    if (auto line = buffered_line()) return line;
    if (!fill(0)) return std::nullopt;
  }
}

std::string_view LineReader::expect_line() {
  auto line = read_line();
  if (!line) throw BenchError("connection closed by the server");
  return *line;
}

std::optional<std::string_view> LineReader::try_read_line() {
  if (auto line = buffered_line()) return line;
  if (!fill(MSG_DONTWAIT)) throw BenchError("connection closed by the server");
  return buffered_line();
}

std::optional<std::string_view> LineReader::buffered_line() {
  const char* start = buffer_.data() + begin_;
  const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
  if (newline == nullptr) return std::nullopt;
  std::size_t length = static_cast<std::size_t>(newline - start);
  begin_ += length + 1;
  if (length > 0 && start[length - 1] == '\r') --length;
  return std::string_view(start, length);
}

// Reads once; false at end of stream. With MSG_DONTWAIT, "nothing yet" counts as success.
bool LineReader::fill(int flags) {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (end_ == buffer_.size()) {
    if (begin_ == 0) {
      buffer_.resize(buffer_.size() * 2);  // a line longer than the buffer
    } else {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
  }
  for (;;) {
    const ssize_t got = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, flags);
    if (got > 0) {
      end_ += static_cast<std::size_t>(got);
      return true;
    }
    if (got == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && (flags & MSG_DONTWAIT) != 0) return true;
    if (errno == EAGAIN) throw BenchError("read timed out");
    fail_errno("read");
  }
}

TempDir::TempDir() {
  char pattern[] = "/tmp/photon-bench-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) fail_errno("mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void ChildProcess::spawn(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env_overrides,
                         const std::string& log_path) {
  // Everything is prepared before fork: the bench may run threads, so the child may only make
  // async-signal-safe calls.
  auto variable_name = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env_storage(env_overrides);
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const bool overridden = std::any_of(
        env_overrides.begin(), env_overrides.end(),
        [&](const std::string& o) { return variable_name(o) == variable_name(*entry); });
    if (!overridden) env_storage.emplace_back(*entry);
  }
  std::vector<std::string> argv_storage(argv);
  std::vector<char*> env_pointers;
  std::vector<char*> argv_pointers;
  for (auto& entry : env_storage) env_pointers.push_back(entry.data());
  for (auto& entry : argv_storage) argv_pointers.push_back(entry.data());
  env_pointers.push_back(nullptr);
  argv_pointers.push_back(nullptr);

  Fd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  Fd null_input(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!log.valid() || !null_input.valid()) fail_errno("open " + log_path);
  const pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid == 0) {
    ::dup2(null_input.get(), STDIN_FILENO);
    ::dup2(log.get(), STDOUT_FILENO);
    ::dup2(log.get(), STDERR_FILENO);
    ::execve(argv_pointers[0], argv_pointers.data(), env_pointers.data());
    ::_exit(127);
  }
  pid_ = pid;
  log_path_ = log_path;
}

bool ChildProcess::has_exited() {
  if (pid_ < 0) return true;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
  pid_ = -1;
  ended_ = describe_status(status);
  return true;
}

std::string ChildProcess::stop() {
  if (pid_ < 0) return ended_;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + 3s;
  while (!has_exited()) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      ended_ = "still running 3 s after SIGTERM, killed";
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  return ended_;
}

EchoServer::EchoServer(const std::string& path) {
  listener_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_un address = unix_address(path);
  if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener_.get(), 16) != 0)
    fail_errno("echo server on " + path);
  thread_ = std::thread([this] { run(); });
}

EchoServer::~EchoServer() {
  stopping_ = true;
  ::shutdown(listener_.get(), SHUT_RDWR);  // wakes accept()
  if (const int client = client_.load(); client >= 0) ::shutdown(client, SHUT_RDWR);
  thread_.join();
}

void EchoServer::run() {
  char buffer[4096];
  while (!stopping_) {
    Fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;
    client_ = client.get();
    for (;;) {
      const ssize_t got = ::read(client.get(), buffer, sizeof(buffer));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      try {
        write_all(client.get(), std::string_view(buffer, static_cast<std::size_t>(got)));
      } catch (const BenchError&) {
        break;
      }
    }
    client_ = -1;
  }
}

CpuPin::CpuPin() : previous_(sizeof(cpu_set_t)) {
  auto* previous = reinterpret_cast<cpu_set_t*>(previous_.data());
  if (::sched_getaffinity(0, sizeof(cpu_set_t), previous) != 0) fail_errno("sched_getaffinity");
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, previous)) ++cpu;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (::sched_setaffinity(0, sizeof(one), &one) != 0) fail_errno("sched_setaffinity");
}

CpuPin::~CpuPin() {
  ::sched_setaffinity(0, sizeof(cpu_set_t), reinterpret_cast<cpu_set_t*>(previous_.data()));
}

double percentile_us(std::vector<std::int64_t>& samples, double p) {
  if (samples.empty()) return std::nan("");
  const auto index = static_cast<std::size_t>(std::llround(p * double(samples.size() - 1)));
  std::nth_element(samples.begin(), samples.begin() + std::ptrdiff_t(index), samples.end());
  return double(samples[index]) / 1000.0;
}

long status_kb(pid_t pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string prefix = std::string(field) + ":";
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with(prefix)) return std::stol(line.substr(prefix.size()));
  throw BenchError("no " + prefix + " in /proc/" + std::to_string(pid) + "/status");
}

std::int64_t cpu_time_ns(pid_t pid) {
  std::int64_t total = 0;
  std::error_code error;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
    std::ifstream schedstat(task.path() / "schedstat");
    std::int64_t on_cpu_ns = 0;
    if (schedstat >> on_cpu_ns) total += on_cpu_ns;
  }
  if (error) throw BenchError("cannot read /proc/" + std::to_string(pid) + "/task");
  return total;
}

std::string file_tail(const std::string& path, std::size_t max_bytes) {
  std::ifstream file(path);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "";
  while (!rest.empty()) {
    const std::string directory(rest.substr(0, rest.find(':')));
    rest.remove_prefix(std::min(rest.size(), directory.size() + 1));
    const std::string candidate = (directory.empty() ? "." : directory) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string command_output(const std::string& command) {
  std::string output;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
    ::pclose(pipe);
  }
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return output;
}

}  // namespace photon::bench
