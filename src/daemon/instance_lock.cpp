// The pid-file lock and the connect probe used to tell a live daemon from a dead one's leftovers.
#include "daemon/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace photon::daemon {
namespace {

pid_t read_pid(int fd) {
  char buffer[32] = {};
  const ssize_t count = ::pread(fd, buffer, sizeof buffer - 1, 0);
  if (count <= 0) return 0;
  return static_cast<pid_t>(std::strtol(buffer, nullptr, 10));
}

}  // namespace

std::optional<InstanceLock> InstanceLock::acquire(const std::filesystem::path& pid_path,
                                                  pid_t& holder_pid) {
  holder_pid = 0;
  // Another daemon may remove the pid file between our open and our lock; then we locked a file
  // that no longer has this name, so we retry until the locked inode is the named one.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(pid_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + pid_path.string());
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      if (error == EWOULDBLOCK) holder_pid = read_pid(fd);
      ::close(fd);
      if (error == EWOULDBLOCK) return std::nullopt;
      throw std::system_error(error, std::generic_category(), "lock " + pid_path.string());
    }
    struct stat locked {};
    struct stat named {};
    if (::fstat(fd, &locked) == 0 && ::stat(pid_path.c_str(), &named) == 0 &&
        locked.st_ino == named.st_ino && locked.st_dev == named.st_dev) {
      return InstanceLock(pid_path, fd);
    }
    ::close(fd);
  }
  throw std::system_error(EAGAIN, std::generic_category(), "lock " + pid_path.string());
}

InstanceLock::InstanceLock(InstanceLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

InstanceLock::~InstanceLock() {
  if (fd_ < 0) return;
  // Unlink while still holding the lock, so no other daemon can own a file we then remove.
  ::unlink(path_.c_str());
  ::close(fd_);
}

void InstanceLock::write_pid() {
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    throw std::system_error(errno, std::generic_category(), "write " + path_.string());
  }
}

bool socket_answers(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string text = path.string();
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
