// photon_bench's plumbing, independent of any protocol: Unix sockets, buffered line reads,
// child processes, a bare echo server, and a few measurements (percentiles, RSS).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace photon::bench {

using Clock = std::chrono::steady_clock;

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail_errno(const std::string& what);

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset();

 private:
  int fd_ = -1;
};

// A connected stream socket with 10 s send and receive timeouts (a hung server fails the
// workload instead of hanging the bench); invalid while nobody listens yet, so callers can retry.
Fd try_connect(const std::string& path);
Fd connect_to(const std::string& path);  // throws when nobody listens

// Writes everything, however many send() calls it takes.
void write_all(int fd, std::string_view data);

// Buffers reads from a stream socket and hands out whole lines however the bytes were split.
// A returned view (without "\n" or "\r\n") stays valid until the next call.
class LineReader {
 public:
  explicit LineReader(int fd, std::size_t capacity = 64 * 1024) : fd_(fd), buffer_(capacity) {}

  // The next line; nothing when the peer closed the connection. Throws on errors and timeouts.
  std::optional<std::string_view> read_line();
  // As read_line, but a closed connection is an error.
  std::string_view expect_line();
  // A line if one is buffered or arrives without waiting.
  std::optional<std::string_view> try_read_line();

 private:
  std::optional<std::string_view> buffered_line();
  bool fill(int flags);

  int fd_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process (a server under test); stopped with SIGTERM when it goes out of scope.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }

  // Starts argv with the bench's environment plus `env_overrides` ("NAME=value"); its output
  // goes to `log_path` so the bench's table stays readable.
  void spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env_overrides,
             const std::string& log_path);

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  bool has_exited();
  // SIGTERM, then SIGKILL after 3 s. Returns how the process ended ("exit 0", ...).
  std::string stop();

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::string ended_;
};

// The floor for the round trip: a thread that echoes bytes back, with no parsing at all.
class EchoServer {
 public:
  explicit EchoServer(const std::string& path);
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;
  ~EchoServer();

 private:
  void run();

  Fd listener_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> client_{-1};
  std::thread thread_;
};

// Confines the calling thread, and so every thread and process it starts meanwhile, to one CPU;
// restores the previous set on destruction.
class CpuPin {
 public:
  CpuPin();
  CpuPin(const CpuPin&) = delete;
  CpuPin& operator=(const CpuPin&) = delete;
  ~CpuPin();

 private:
  std::vector<unsigned char> previous_;  // a cpu_set_t, kept opaque here
};

// The p-quantile (0..1) of unsorted samples in ns, in µs; reorders the samples. NaN when empty.
double percentile_us(std::vector<std::int64_t>& samples, double p);

// A memory figure from /proc/PID/status: VmRSS (all resident pages), or RssAnon (the process's
// own memory, without the pages of mapped files such as shared libraries).
long status_kb(pid_t pid, std::string_view field = "VmRSS");
// CPU time a process has used so far, all its threads together, in ns (the sum of
// /proc/PID/task/*/schedstat): what a server spends on the work, whatever else runs on the machine.
// Threads that have already ended are not counted.
std::int64_t cpu_time_ns(pid_t pid);
std::string file_tail(const std::string& path, std::size_t max_bytes = 2000);
std::string find_on_path(const std::string& program);  // empty when not found
std::string command_output(const std::string& command);

}  // namespace photon::bench
