// systemd integration through libsystemd's sd-daemon calls (see service_manager.hpp).
#include "daemon/service_manager.hpp"

#include "daemon/daemon.hpp"

#include <systemd/sd-daemon.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace photon::daemon {

std::optional<int> inherited_listener(const std::filesystem::path& socket_path) {
  // unset_environment=1: the variables name this process only; exec children must not act on them.
  const int count = ::sd_listen_fds(1);
  if (count < 0) {
    throw StartupError(1, std::string("socket activation: ") + std::strerror(-count));
  }
  if (count == 0) return std::nullopt;
  const int fd = SD_LISTEN_FDS_START;
  for (int extra = fd + 1; extra < fd + count; ++extra) ::close(extra);
  if (count > 1) {
    ::close(fd);
    throw StartupError(
        1, "socket activation passed " + std::to_string(count) +
               " sockets; photond serves exactly one (ListenStream=" + socket_path.string() + ")");
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  auto refuse = [&](const std::string& why) {
    ::close(fd);
    return StartupError(1, "socket activation: " + why);
  };
  if (::sd_is_socket_unix(fd, SOCK_STREAM, 1, socket_path.c_str(), 0) <= 0) {
    throw refuse("the socket passed is not a listening Unix stream socket on " +
                 socket_path.string() + " (set ListenStream= to that path)");
  }
  struct stat info {};
  if (::lstat(socket_path.c_str(), &info) != 0 || !S_ISSOCK(info.st_mode)) {
    throw refuse(socket_path.string() + " is not the socket passed");
  }
  if (info.st_uid != ::geteuid()) {
    throw refuse(socket_path.string() + " belongs to uid " + std::to_string(info.st_uid) +
                 ", not to the daemon's user");
  }
  if ((info.st_mode & 07777) != 0600) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    throw refuse(socket_path.string() + " has mode " + mode +
                 "; the photon's socket must be 0600 (SocketMode=0600)");
  }
  return fd;
}

void notify_ready(const std::string& status) {
  const std::string message =
      "READY=1\nSTATUS=" + status + "\nMAINPID=" + std::to_string(::getpid());
  ::sd_notify(0, message.c_str());
}

void notify_stopping() { ::sd_notify(0, "STOPPING=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

void notify_watchdog() { ::sd_notify(0, "WATCHDOG=1"); }

}  // namespace photon::daemon
