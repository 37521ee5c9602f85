// write_file_atomically: create a temporary, write, sync, rename over the target, sync the
// directory.
#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace photon {

std::optional<std::string> write_file_atomically(int dir_fd, std::string_view name,
                                                 std::string_view text, bool durable, mode_t mode,
                                                 std::string_view shown_dir) {
  const std::string target(name);
  const std::string temporary = target + std::string(kTemporarySuffix);
  const std::string prefix = shown_dir.empty() ? std::string() : std::string(shown_dir) + "/";
  const std::string shown_temporary = prefix + temporary;
  auto failure = [&](int error, const std::string& what) {
    ::unlinkat(dir_fd, temporary.c_str(), 0);
    return what + ": " + std::generic_category().message(error);
  };
  // A leftover of a crash between create and rename: ours (the directory is), so removed.
  if (::unlinkat(dir_fd, temporary.c_str(), 0) != 0 && errno != ENOENT) {
    return "cannot remove " + shown_temporary + ": " + std::generic_category().message(errno);
  }
  const int fd = ::openat(dir_fd, temporary.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    // Not failure(): the entry that is there was not made by us.
    return "cannot create " + shown_temporary + ": " + std::generic_category().message(errno);
  }
  // The umask may have narrowed `mode`; the caller asked for exactly it.
  ::fchmod(fd, mode);
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t count = ::write(fd, text.data() + written, text.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) {
      const int error = count < 0 ? errno : EIO;
      ::close(fd);
      return failure(error, "cannot write " + shown_temporary);
    }
    written += static_cast<std::size_t>(count);
  }
  if (durable && ::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    return failure(error, "cannot sync " + shown_temporary);
  }
  ::close(fd);
  if (::renameat(dir_fd, temporary.c_str(), dir_fd, target.c_str()) != 0) {
    return failure(errno, "cannot rename " + shown_temporary + " to " + target);
  }
  if (durable) ::fsync(dir_fd);
  return std::nullopt;
}

}  // namespace photon
