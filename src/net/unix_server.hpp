// The daemon's Unix-socket listener: binds the socket 0600, admits only the owner's uid (and
// root), bounds the number of connections, survives running out of descriptors, and shuts down
// gracefully.
#pragma once

#include "common/clock.hpp"
#include "common/defaults.hpp"
#include "common/private_dir.hpp"
#include "net/output_queue.hpp"
#include "net/peer.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

namespace photon::net {

class Connection;

struct ServerLimits {
  std::size_t max_line_bytes = defaults::kMaxLineBytes;
  std::size_t max_connections = defaults::kMaxConnections;
  OutputLimits output;
  // Reading from a connection pauses while this much output is queued to it.
  std::size_t pause_reading_bytes = 1u << 20;
};

// Invariants: connections_ holds exactly the open connections; once stopping_ is set nothing new
// is accepted and `on_stopped_` runs once, when the last connection has closed.
// Thread rule: the event loop thread only.
class UnixServer {
 public:
  UnixServer(boost::asio::io_context& io, PeerHandler& handler, const Clock& clock,
             ServerLimits limits);
  ~UnixServer();

  // Binds and listens on socket `name` of `dir` (which must not exist there) with mode 0600.
  // The bind goes through dir.entry_path(name) (/proc/self/fd/FD/NAME), so the socket is created
  // in the checked directory itself even if its path now leads elsewhere. Throws
  // boost::system::system_error naming dir.shown(name) on failure.
  void listen(const PrivateDir& dir, std::string_view name);

  // Listens on `fd`, a listening Unix stream socket made by someone else (systemd's socket
  // activation); takes ownership of the descriptor. The socket file is its maker's: nothing here
  // creates or removes it. Throws boost::system::system_error on failure.
  void adopt(int fd);

  // Starts the accept loop; call after listen().
  void start();

  // Stops accepting, lets every connection flush for at most `grace`, closes the rest, then calls
  // `on_stopped`.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> on_stopped);

  // The clock is a test clock, which only requests move: the accept back-off then ends when
  // check_deadlines() finds its time has come rather than on a real timer.
  void follow_manual_clock() { manual_clock_ = true; }
  // The clock moved by hand (a test clock): drops the slow consumers whose soft-limit time is up
  // and ends an accept back-off whose time has come.
  void check_deadlines();

  std::size_t connection_count() const { return connections_.size(); }
  // How often accepting paused for kAcceptBackoff because descriptors or memory ran out.
  std::uint64_t accept_pauses() const { return accept_pauses_; }
  std::uint64_t dropped_slow_consumers() const { return dropped_slow_consumers_; }
  std::uint64_t connections_refused() const { return connections_refused_; }

 private:
  friend class Connection;

  boost::asio::awaitable<void> accept_loop();
  void admit(boost::asio::local::stream_protocol::socket socket);
  void refuse(boost::asio::local::stream_protocol::socket& socket, TransportRefusal reason,
              std::uint64_t value);
  void remove(Connection* connection);
  void finish_shutdown_if_done();

  boost::asio::io_context& io_;
  PeerHandler& handler_;
  const Clock& clock_;
  ServerLimits limits_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer grace_timer_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  // Every connection reads into this buffer and keeps only a partial line for itself, so an idle
  // connection costs no read buffer.
  std::array<char, 64 * 1024> read_scratch_;
  std::function<void()> on_stopped_;
  bool stopping_ = false;
  bool manual_clock_ = false;
  // While accepting is paused: when it resumes, on clock_.
  std::optional<std::chrono::steady_clock::time_point> backoff_until_;
  std::uint64_t accept_pauses_ = 0;
  std::uint64_t dropped_slow_consumers_ = 0;
  std::uint64_t connections_refused_ = 0;
};

}  // namespace photon::net
