// One child process watched from the event loop: spawned with its stdio on fresh non-blocking
// pipes, in its own process group; its exit seen through a pidfd; signalled, killed and reaped
// here. It knows nothing of what the child says (ExecHost speaks the protocol with it).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace photon::core {

struct ChildSpec {
  std::string program;  // the file to run (see find_program)
  std::vector<std::string> argv;
  std::vector<std::string> env;  // NAME=value entries: the whole environment
  std::filesystem::path working_dir;
  // Close the child's stdin once everything written to it is written (a child that reads to the
  // end of its input must see the end); else it stays open for later writes.
  bool close_stdin_when_written = true;
};

// Where `name` (argv[0]) is: relative to `working_dir` when it has a '/', else found in `path`
// (a PATH value) the way execvp would (relative entries count from `working_dir`). Nothing when
// no executable file is found.
std::optional<std::string> find_program(const std::string& name,
                                        const std::filesystem::path& working_dir,
                                        std::string_view path);

// A child process, from spawn() until it has been reaped.
//
// spawn() uses posix_spawn: the child gets its own process group, the working directory, no
// descriptor but its stdio, default signal dispositions and an empty signal mask. Its exit is
// watched through a pidfd (Linux 5.3+; polled on older kernels). Reaping waits until the group
// has been killed: the exited child (a zombie) keeps its process group id reserved until then, so
// what is left in the group (a background grandchild holding stdout) gets SIGKILL and no other
// process can be hit.
//
// Lifetime: create with std::make_shared; its pending operations hold it. A handler given to
// read_stdout, read_stderr or wait_exit is kept until it runs (it may keep its owner alive).
// Invariants: the child is not reaped before exited() is true, so signal() reaches its group
// until then; once exited(), no handler of wait_exit runs again.
// Thread rule: the event loop thread only; handlers run on it, never from inside the call that
// gave them.
class ChildProcess : public std::enable_shared_from_this<ChildProcess> {
 public:
  struct SpawnError {
    std::string message;  // in words: the errno text, or why the child cannot be watched
    // The child had started but its pipes could not be watched: it has been killed and reaped.
    bool started = false;
  };

  explicit ChildProcess(boost::asio::io_context& loop);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts the child (once). Nothing on success.
  std::optional<SpawnError> spawn(const ChildSpec& spec);

  pid_t pid() const { return pid_; }
  // Reaped (or lost: someone else reaped it), its group killed.
  bool exited() const { return exited_; }

  // Queues `bytes` for the child's stdin, written in order; dropped once stdin is closed. A write
  // that fails (the child closed its stdin or exited) closes stdin: the child wants no more.
  void write_stdin(std::string bytes);
  void close_stdin();

  // Reads what stdout (stderr) has next: `handler(ec, data)`, data valid during the call only
  // (empty with an error; the end of the output is an error). Read again from the handler to go
  // on. The read buffer is released when the pipe is closed or fails.
  using ReadHandler = std::function<void(boost::system::error_code, std::string_view)>;
  void read_stdout(ReadHandler handler);
  void read_stderr(ReadHandler handler);
  bool stdout_open() const { return stdout_.is_open(); }
  void close_stdout();
  void close_stderr();

  // Calls `handler(status)` once the child has exited and has been reaped, after its process
  // group was killed (SIGKILL): status is the wait status, nothing when it was lost (ECHILD). Once
  // per spawn.
  void wait_exit(std::function<void(std::optional<int> status)> handler);

  // Sends `signo` to the child's process group and to the child (in case it left its group);
  // nothing once it has been reaped.
  void signal(int signo);

  // Kills the group (SIGKILL) and reaps the child now, blocking until it is gone; closes every
  // pipe and stops watching. Pending handlers of reads then see an error; wait_exit's does not
  // run.
  void kill_and_reap();

 private:
  void write_next();
  void watch_exit(std::shared_ptr<std::function<void(std::optional<int>)>> handler);
  void check_exit(std::shared_ptr<std::function<void(std::optional<int>)>> handler);
  void read(boost::asio::posix::stream_descriptor& pipe, std::vector<char>& buffer,
            ReadHandler handler);

  pid_t pid_ = -1;
  bool exited_ = false;
  bool close_stdin_when_written_ = true;
  boost::asio::posix::stream_descriptor stdin_;
  boost::asio::posix::stream_descriptor stdout_;
  boost::asio::posix::stream_descriptor stderr_;
  boost::asio::posix::stream_descriptor pidfd_;
  boost::asio::steady_timer exit_poll_;  // without a pidfd
  std::deque<std::string> stdin_queue_;
  bool writing_ = false;
  std::vector<char> stdout_buffer_;
  std::vector<char> stderr_buffer_;
};

}  // namespace photon::core
