// The pid-file lock and the connect probe used to tell a live daemon from a dead one's leftovers.
#include "daemon/instance_lock.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <utility>

namespace photon::daemon {
namespace {

constexpr int kAttempts = 100;

// POSIX locks belong to the process, so a second acquire in a process that holds the lock would
// be granted, and closing its descriptor would drop the first one's lock. The pid files this
// process holds (device, inode) are kept here and checked before a file is opened.
std::mutex held_mutex;
std::set<std::pair<dev_t, ino_t>> held_files;

pid_t read_pid(int fd) {
  char buffer[32] = {};
  const ssize_t count = ::pread(fd, buffer, sizeof buffer - 1, 0);
  if (count <= 0) return 0;
  return static_cast<pid_t>(std::strtol(buffer, nullptr, 10));
}

struct flock whole_file(short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;
  return lock;
}

// Writes the pid first and truncates after, so that a reader never finds the file empty.
bool write_pid(int fd) {
  const std::string text = std::to_string(::getpid()) + "\n";
  return ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()) &&
         ::ftruncate(fd, static_cast<off_t>(text.size())) == 0;
}

}  // namespace

std::optional<InstanceLock> InstanceLock::acquire(const PrivateDir& dir, std::string_view name,
                                                  pid_t& holder_pid) {
  holder_pid = 0;
  const std::lock_guard held(held_mutex);
  const std::string leaf(name);
  const std::string shown = dir.shown(name).string();
  // Another daemon may remove the pid file between our open and our lock; then we locked a file
  // that no longer has this name, so we retry until the locked inode is the named one. A holder
  // may also let go between our refused lock and our question who holds it: then we try again.
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (const auto existing = dir.status(leaf);
        existing && held_files.contains({existing->st_dev, existing->st_ino})) {
      holder_pid = ::getpid();
      return std::nullopt;
    }
    const int fd = dir.open_file(leaf, O_RDWR | O_CREAT, 0600);
    struct flock lock = whole_file(F_WRLCK);
    if (::fcntl(fd, F_SETLK, &lock) != 0) {
      const int error = errno;
      if (error != EAGAIN && error != EACCES) {
        ::close(fd);
        throw std::system_error(error, std::generic_category(), "lock " + shown);
      }
      struct flock holder = whole_file(F_WRLCK);
      const bool asked = ::fcntl(fd, F_GETLK, &holder) == 0;
      const pid_t file_pid = read_pid(fd);
      ::close(fd);
      if (asked && holder.l_type == F_UNLCK) continue;  // released meanwhile
      holder_pid = asked && holder.l_pid > 0 ? holder.l_pid : file_pid;
      return std::nullopt;
    }
    const std::optional<struct stat> named = dir.status(leaf);
    struct stat locked {};
    if (::fstat(fd, &locked) == 0 && named && locked.st_ino == named->st_ino &&
        locked.st_dev == named->st_dev) {
      if (!write_pid(fd)) {
        const int error = errno;
        ::close(fd);
        throw std::system_error(error, std::generic_category(), "write " + shown);
      }
      const int dir_fd = ::fcntl(dir.fd(), F_DUPFD_CLOEXEC, 0);
      if (dir_fd < 0) {
        const int error = errno;
        ::close(fd);
        throw std::system_error(error, std::generic_category(), "dup " + dir.path().string());
      }
      held_files.insert({locked.st_dev, locked.st_ino});
      return InstanceLock(dir_fd, leaf, fd);
    }
    ::close(fd);
  }
  throw std::system_error(EAGAIN, std::generic_category(), "lock " + shown);
}

InstanceLock::InstanceLock(InstanceLock&& other) noexcept
    : dir_fd_(std::exchange(other.dir_fd_, -1)),
      name_(std::move(other.name_)),
      fd_(std::exchange(other.fd_, -1)) {}

InstanceLock::~InstanceLock() {
  if (fd_ < 0) return;
  const std::lock_guard held(held_mutex);
  struct stat locked {};
  if (::fstat(fd_, &locked) == 0) held_files.erase({locked.st_dev, locked.st_ino});
  // Unlink while still holding the lock, so no other daemon can own a file we then remove.
  ::unlinkat(dir_fd_, name_.c_str(), 0);
  ::close(fd_);
  ::close(dir_fd_);
}

bool socket_answers(const PrivateDir& dir, std::string_view name) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string text = dir.entry_path(name);
  if (text.size() >= sizeof address.sun_path) return false;
  std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool answered =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return answered;
}

}  // namespace photon::daemon
