// Exactly one daemon per photon: an exclusive lock on NAME.pid, held for the daemon's life, and
// the detection and replacement of a socket left behind by a daemon that died.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

namespace photon::daemon {

// Invariants: while an InstanceLock exists, this process holds flock(LOCK_EX) on the pid file
// that is at pid_path (same inode), and the file contains this process's pid once write_pid ran.
// The destructor removes the pid file and releases the lock.
class InstanceLock {
 public:
  // Takes the lock, or returns nothing and sets `holder_pid` (0 when unknown) when a live
  // process holds it. Throws std::system_error when the file cannot be opened or locked.
  static std::optional<InstanceLock> acquire(const std::filesystem::path& pid_path,
                                             pid_t& holder_pid);

  InstanceLock(InstanceLock&& other) noexcept;
  InstanceLock& operator=(InstanceLock&&) = delete;
  ~InstanceLock();

  // Records this process's pid (after a fork, the final process must call it).
  void write_pid();

 private:
  InstanceLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

// Whether a process accepts connections on the Unix socket at `path`.
bool socket_answers(const std::filesystem::path& path);

}  // namespace photon::daemon
