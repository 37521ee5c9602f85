// Exactly one daemon per photon: an exclusive lock on NAME.pid, held for the daemon's life, and
// the detection and replacement of a socket left behind by a daemon that died.
#pragma once

#include "common/private_dir.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace photon::daemon {

// Invariants: while an InstanceLock exists, this process holds a POSIX write lock (fcntl F_SETLK)
// on the whole pid file that is entry name_ of the locked directory (same inode), and the file
// holds this process's pid. The destructor removes the pid file and releases the lock.
//
// A POSIX lock, not flock: the kernel tells a process refused the lock which process holds it
// (F_GETLK), so the loser of a start race names the winner even before the winner has written
// its pid, and never a pid a dead daemon left in the file. The price is POSIX's rule that closing
// any descriptor of the file drops the lock: nothing else in the daemon opens NAME.pid.
class InstanceLock {
 public:
  // Takes the lock on entry `name` of `dir` (creating the file 0600, never following a symlink)
  // and writes this process's pid into it; or returns nothing and sets `holder_pid` when another
  // process holds it (0 only when that process is in another pid namespace and the file names
  // no pid; this process's pid when this process holds it already). Throws std::system_error or
  // UntrustedPathError when the file cannot be opened or locked. The lock is this process's: call
  // it in the process that will serve (after any fork). Thread-safe.
  static std::optional<InstanceLock> acquire(const PrivateDir& dir, std::string_view name,
                                             pid_t& holder_pid);

  InstanceLock(InstanceLock&& other) noexcept;
  InstanceLock& operator=(InstanceLock&&) = delete;
  ~InstanceLock();

 private:
  InstanceLock(int dir_fd, std::string name, int fd)
      : dir_fd_(dir_fd), name_(std::move(name)), fd_(fd) {}
  int dir_fd_ = -1;  // our own duplicate of the directory's descriptor
  std::string name_;
  int fd_ = -1;
};

// Whether a process accepts connections on socket `name` of `dir`.
bool socket_answers(const PrivateDir& dir, std::string_view name);

}  // namespace photon::daemon
