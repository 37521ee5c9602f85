// One client connection on the Unix socket: frames input into lines for the PeerHandler, and
// writes queued output with one sendmsg per loop turn.
#pragma once

#include "net/output_queue.hpp"
#include "net/peer.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <string>

namespace photon::net {

class UnixServer;

// Lifetime: owned by the UnixServer's table while open; pending operations hold a shared_ptr, so
// the object outlives its removal from the table until they finish.
// Invariants: once closed_ is set, the handler has been told (on_close) and nothing more is read,
// queued or written; pending_ holds a partial line no longer than the line limit; backlog_ holds
// at most one turn's input (1 MiB and a bit), kept while output is backed up.
// Thread rule: the event loop thread only.
class Connection final : public Peer, public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::local::stream_protocol::socket socket, UnixServer& server);

  // Tells the handler of the connection and starts reading.
  void start();

  void send(SharedBytes line) override;
  void send(std::string line) override;
  void close_after_flush() override;

  // Closes now, dropping queued output.
  void close();

  // Drops the connection if its output has stayed over the soft limit for the soft duration by
  // the clock now (a timer checks this too; a test clock moved by hand reaches it first).
  void check_soft_limit();

 private:
  enum class ReadOutcome { kOpen, kEndOfInput, kFailed };

  boost::asio::awaitable<void> read_loop();
  // After a read filled first_read_, reads whatever else is waiting through the server's shared
  // buffer (bounded per turn, for fairness between connections).
  ReadOutcome drain_socket();
  // Runs `batch` (which dispatches input) and then writes this connection's replies at once.
  template <typename Batch>
  ReadOutcome dispatch_batch(Batch batch);
  // Whether to stop serving input for now: too much output waiting, or the connection going.
  bool input_paused() const;
  // Splits freshly read bytes into lines and hands them to the handler.
  void consume_input(std::string_view data);
  void serve_final_line();
  void dispatch_line(std::string_view line);
  void reject_long_line();
  // Queues a line (std::string or SharedBytes) and arranges for it to be written.
  template <typename Line>
  void enqueue(Line line);
  void schedule_flush();
  void flush();
  void watch_soft_limit();
  void drop_slow_consumer();

  boost::asio::local::stream_protocol::socket socket_;
  UnixServer& server_;
  OutputQueue output_;
  // Each connection's own read buffer is small (idle connections are cheap); bulk input is read
  // through the server's shared scratch buffer by drain_socket().
  std::array<char, 1024> first_read_;
  std::string pending_;
  std::string backlog_;  // input read but not yet served because output is backed up
  boost::asio::steady_timer reading_resumed_;  // cancelled to wake a reader paused by output
  boost::asio::steady_timer soft_limit_timer_;
  bool soft_limit_armed_ = false;
  bool flush_scheduled_ = false;
  bool dispatching_ = false;           // inside consume_input: this connection's own replies
  bool flush_after_dispatch_ = false;  // are flushed when it returns
  bool waiting_writable_ = false;
  bool closing_ = false;  // no more input; close when output is written
  bool closed_ = false;
  bool overflowed_ = false;
};

}  // namespace photon::net
