// The daemon's log file, NAME.log in its checked directory, rotated to NAME.1.log ... NAME.K.log:
// spdlog's rotating file sink re-resolves the file's path at every open and rename, this one
// reaches the files only through the directory's descriptor and never follows a symlink.
#pragma once

#include "common/private_dir.hpp"

#include <spdlog/sinks/base_sink.h>

#include <cstddef>
#include <mutex>
#include <string>

namespace photon::daemon {

// Invariants: fd_ is open for appending on entry `name_` of the directory dir_fd_ refers to (a
// duplicate the sink owns); size_ is the file's size as far as this sink wrote it. A line that
// would take the file past max_bytes_ first rotates it, unless the file is empty.
// Thread rule: any thread (spdlog's base_sink holds the mutex around sink_it_ and flush_).
class LogFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Opens (creating 0600) entry `name` ("svc.log") of `dir` for appending; keeps at most
  // `files_kept` rotated files. Throws what PrivateDir::open_file throws (a symlink or a
  // non-regular file at `name` is refused).
  LogFileSink(const PrivateDir& dir, std::string name, std::size_t max_bytes,
              std::size_t files_kept);
  ~LogFileSink() override;

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override;
  void flush_() override {}  // every line goes to the kernel with one write

 private:
  // "svc.log", 2 -> "svc.2.log", as spdlog names rotated files.
  std::string rotated_name(std::size_t index) const;
  void rotate();

  int dir_fd_ = -1;
  std::string name_;
  std::string shown_;  // the file's path, for error messages
  std::size_t max_bytes_;
  std::size_t files_kept_;
  int fd_ = -1;
  std::size_t size_ = 0;
};

}  // namespace photon::daemon
