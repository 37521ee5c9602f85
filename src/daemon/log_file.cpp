// Appending and rotating the daemon's log relative to its directory's descriptor.
#include "daemon/log_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace photon::daemon {
namespace {

constexpr int kAppend = O_WRONLY | O_APPEND | O_CREAT;

}  // namespace

LogFileSink::LogFileSink(const PrivateDir& dir, std::string name, std::size_t max_bytes,
                         std::size_t files_kept)
    : name_(std::move(name)),
      shown_(dir.shown(name_).string()),
      max_bytes_(max_bytes),
      files_kept_(files_kept) {
  fd_ = dir.open_file(name_, kAppend, 0600);
  dir_fd_ = ::fcntl(dir.fd(), F_DUPFD_CLOEXEC, 0);
  if (dir_fd_ < 0) {
    const int error = errno;
    ::close(fd_);
    throw std::system_error(error, std::generic_category(), "dup " + dir.path().string());
  }
  struct stat info {};
  if (::fstat(fd_, &info) == 0) size_ = static_cast<std::size_t>(info.st_size);
}

LogFileSink::~LogFileSink() {
  if (fd_ >= 0) ::close(fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

void LogFileSink::sink_it_(const spdlog::details::log_msg& message) {
  spdlog::memory_buf_t formatted;
  formatter_->format(message, formatted);
  if (size_ > 0 && size_ + formatted.size() > max_bytes_) rotate();
  if (fd_ < 0) return;  // the last rotation could not open a new file; nothing to write to
  std::size_t written = 0;
  while (written < formatted.size()) {
    const ssize_t count = ::write(fd_, formatted.data() + written, formatted.size() - written);
    if (count < 0 && errno == EINTR) continue;
    // A full disk loses log lines, never the daemon: spdlog reports a throw on stderr only.
    if (count <= 0) throw spdlog::spdlog_ex("cannot write " + shown_, errno);
    written += static_cast<std::size_t>(count);
  }
  size_ += written;
}

std::string LogFileSink::rotated_name(std::size_t index) const {
  const auto dot = name_.rfind('.');
  if (dot == std::string::npos || dot == 0) return name_ + "." + std::to_string(index);
  return name_.substr(0, dot) + "." + std::to_string(index) + name_.substr(dot);
}

void LogFileSink::rotate() {
  ::close(fd_);
  fd_ = -1;
  // svc.2.log -> svc.3.log, svc.1.log -> svc.2.log, svc.log -> svc.1.log; renameat replaces a
  // target entry itself (a symlink is replaced, not followed).
  for (std::size_t index = files_kept_; index > 0; --index) {
    const std::string from = index == 1 ? name_ : rotated_name(index - 1);
    const std::string to = rotated_name(index);
    if (::renameat(dir_fd_, from.c_str(), dir_fd_, to.c_str()) != 0 && errno != ENOENT) break;
  }
  fd_ = ::openat(dir_fd_, name_.c_str(), kAppend | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  size_ = 0;
  if (fd_ < 0) throw spdlog::spdlog_ex("cannot open " + shown_ + " after rotating it", errno);
}

}  // namespace photon::daemon
