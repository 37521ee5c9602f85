// The owner and mode checks of a private directory, and file operations relative to its descriptor.
#include "common/private_dir.hpp"

#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>

namespace photon {
namespace {

constexpr mode_t kWritableByOthers = S_IWGRP | S_IWOTH;

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string required_owner(uid_t euid, TrustedOwners owners) {
  std::string text = "uid " + std::to_string(euid);
  if (owners == TrustedOwners::kSelfOrRoot && euid != 0) text += " or root";
  return text;
}

std::system_error errno_error(int error, const std::filesystem::path& path, std::string_view what) {
  return std::system_error(error, std::generic_category(), std::string(what) + " " + path.string());
}

bool owner_trusted(uid_t owner, uid_t euid, TrustedOwners owners) {
  return owner == euid || (owners == TrustedOwners::kSelfOrRoot && owner == 0);
}

// Opens `leaf` in `parent` as a directory without following a symlink, and checks it.
int open_checked(int parent, const std::filesystem::path& path, const std::string& leaf,
                 TrustedOwners owners) {
  // A client only looks entries up: O_PATH needs no read permission (a root-owned 0711 directory
  // is usable, as it is to connect(2) by path). The daemon reads, syncs and chmods its own.
  const int access = owners == TrustedOwners::kSelf ? O_RDONLY : O_PATH;
  const int fd = ::openat(parent, leaf.c_str(), access | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  const uid_t euid = ::geteuid();
  if (fd < 0) {
    const int error = errno;
    struct stat info {};
    // A symlink (ELOOP, or ENOTDIR with O_DIRECTORY) or a file: say what is there.
    if ((error == ELOOP || error == ENOTDIR) &&
        ::fstatat(parent, leaf.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0) {
      throw UntrustedPathError(
          path.string() + (S_ISLNK(info.st_mode) ? " is a symbolic link" : " is not a directory") +
          "; it must be a directory owned by " + required_owner(euid, owners) +
          " that group and others cannot write");
    }
    throw errno_error(error, path, "cannot open");
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    throw errno_error(error, path, "cannot read the status of");
  }
  if (auto distrust = directory_distrust(path, info, euid, owners)) {
    ::close(fd);
    throw UntrustedPathError(*distrust);
  }
  return fd;
}

// The directory `path` is in, and its last component: "a/b/daemons" -> ("a/b", "daemons").
std::pair<std::filesystem::path, std::string> split(const std::filesystem::path& path) {
  std::filesystem::path clean = path;
  if (!clean.has_filename()) clean = clean.parent_path();  // "x/daemons/"
  const std::filesystem::path parent = clean.parent_path();
  return {parent.empty() ? std::filesystem::path(".") : parent, clean.filename().string()};
}

}  // namespace

std::optional<std::string> directory_distrust(const std::filesystem::path& path,
                                              const struct stat& info, uid_t euid,
                                              TrustedOwners owners) {
  if (!S_ISDIR(info.st_mode)) {
    return path.string() + " is not a directory; it must be a directory owned by " +
           required_owner(euid, owners) + " that group and others cannot write";
  }
  if (owner_trusted(info.st_uid, euid, owners) && (info.st_mode & kWritableByOthers) == 0) {
    return std::nullopt;
  }
  return path.string() + " is owned by uid " + std::to_string(info.st_uid) + " with mode " +
         octal_mode(info.st_mode) + "; it must be owned by " + required_owner(euid, owners) +
         " and group and others must not be able to write it";
}

std::optional<std::string> socket_distrust(const std::filesystem::path& path,
                                           const struct stat& info, uid_t euid) {
  if (!S_ISSOCK(info.st_mode)) {
    return path.string() + (S_ISLNK(info.st_mode) ? " is a symbolic link" : " is not a socket") +
           "; a daemon's socket must be a socket owned by " +
           required_owner(euid, TrustedOwners::kSelfOrRoot);
  }
  if (owner_trusted(info.st_uid, euid, TrustedOwners::kSelfOrRoot)) return std::nullopt;
  return path.string() + " is owned by uid " + std::to_string(info.st_uid) +
         "; a daemon's socket must be owned by " + required_owner(euid, TrustedOwners::kSelfOrRoot);
}

std::optional<std::string> listener_distrust(const std::filesystem::path& path, uid_t peer_uid,
                                             uid_t euid) {
  if (owner_trusted(peer_uid, euid, TrustedOwners::kSelfOrRoot)) return std::nullopt;
  return "the process listening on " + path.string() + " runs as uid " + std::to_string(peer_uid) +
         "; a daemon must run as " + required_owner(euid, TrustedOwners::kSelfOrRoot);
}

PrivateDir PrivateDir::open_owned(const std::filesystem::path& path) {
  const auto [parent_path, leaf] = split(path);
  // The parent is created when missing ($PHOTON_DIR itself) but not checked: everything below
  // goes through the descriptor of the checked directory, so a later change of the parent
  // cannot redirect it.
  if (::mkdir(parent_path.c_str(), 0700) != 0 && errno != EEXIST) {
    throw errno_error(errno, parent_path, "cannot create");
  }
  const int parent = ::open(parent_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent < 0) throw errno_error(errno, parent_path, "cannot open");
  if (::mkdirat(parent, leaf.c_str(), 0700) != 0 && errno != EEXIST) {
    const int error = errno;
    ::close(parent);
    throw errno_error(error, path, "cannot create");
  }
  int fd = -1;
  try {
    fd = open_checked(parent, path, leaf, TrustedOwners::kSelf);
  } catch (...) {
    ::close(parent);
    throw;
  }
  ::close(parent);
  PrivateDir dir(path, fd);
  struct stat info {};
  // Readable by others is no danger to the daemon, but nothing in it is theirs to list.
  if (::fstat(fd, &info) == 0 && (info.st_mode & 077) != 0) ::fchmod(fd, 0700);
  return dir;
}

std::optional<PrivateDir> PrivateDir::open_trusted(const std::filesystem::path& path) {
  const auto [parent_path, leaf] = split(path);
  const int parent = ::open(parent_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw errno_error(errno, parent_path, "cannot open");
  }
  int fd = -1;
  try {
    fd = open_checked(parent, path, leaf, TrustedOwners::kSelfOrRoot);
  } catch (const std::system_error& error) {
    ::close(parent);
    if (error.code().value() == ENOENT) return std::nullopt;
    throw;
  } catch (...) {
    ::close(parent);
    throw;
  }
  ::close(parent);
  return PrivateDir(path, fd);
}

PrivateDir::PrivateDir(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {
  // /proc/self/fd/FD must lead to this very directory (it does wherever /proc is mounted).
  struct stat through_proc {};
  struct stat own {};
  proc_reaches_fd_ = ::stat(("/proc/self/fd/" + std::to_string(fd_)).c_str(), &through_proc) == 0 &&
                     ::fstat(fd_, &own) == 0 && through_proc.st_dev == own.st_dev &&
                     through_proc.st_ino == own.st_ino;
}

PrivateDir::PrivateDir(PrivateDir&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      proc_reaches_fd_(other.proc_reaches_fd_) {}

PrivateDir& PrivateDir::operator=(PrivateDir&& other) noexcept {
  if (this == &other) return *this;
  if (fd_ >= 0) ::close(fd_);
  path_ = std::move(other.path_);
  fd_ = std::exchange(other.fd_, -1);
  proc_reaches_fd_ = other.proc_reaches_fd_;
  return *this;
}

PrivateDir::~PrivateDir() {
  if (fd_ >= 0) ::close(fd_);
}

std::string PrivateDir::entry_path(std::string_view name) const {
  if (!proc_reaches_fd_) return shown(name).string();
  return "/proc/self/fd/" + std::to_string(fd_) + "/" + std::string(name);
}

int PrivateDir::open_file(std::string_view name, int flags, mode_t mode) const {
  const std::string leaf(name);
  // O_NONBLOCK: opening a FIFO someone left here must not block; cleared once it is known to be
  // a regular file.
  const int fd = ::openat(fd_, leaf.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
  if (fd < 0) {
    const int error = errno;
    if (error == ELOOP) {
      throw UntrustedPathError(shown(name).string() +
                               " is a symbolic link; photon never follows one in its directory");
    }
    throw errno_error(error, shown(name), "cannot open");
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw UntrustedPathError(shown(name).string() + " is not a regular file");
  }
  if ((flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

std::optional<std::string> PrivateDir::replace_file(std::string_view name, std::string_view text,
                                                    bool durable) const {
  return write_file_atomically(fd_, name, text, durable, 0600, path_.string());
}

std::optional<struct stat> PrivateDir::status(std::string_view name) const {
  struct stat info {};
  if (::fstatat(fd_, std::string(name).c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0) return info;
  if (errno == ENOENT) return std::nullopt;
  throw errno_error(errno, shown(name), "cannot read the status of");
}

bool PrivateDir::remove(std::string_view name) const {
  return ::unlinkat(fd_, std::string(name).c_str(), 0) == 0 || errno == ENOENT;
}

}  // namespace photon
