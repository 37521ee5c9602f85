// Connection: line framing on input, coalesced sendmsg on output, slow-consumer cut-off.
#include "net/connection.hpp"

#include "net/unix_server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace photon::net {
namespace asio = boost::asio;

namespace {

// A partial line kept between reads gives its memory back once it grew past this.
constexpr std::size_t kKeptPendingCapacity = 64 * 1024;
constexpr std::size_t kMaxIovecs = IOV_MAX;
// What one connection may read in one turn of the loop before the others get theirs.
constexpr std::size_t kDrainBudgetBytes = 1u << 20;

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

}  // namespace

Connection::Connection(asio::local::stream_protocol::socket socket, UnixServer& server)
    : socket_(std::move(socket)),
      server_(server),
      output_(server.limits_.output, server.clock_),
      reading_resumed_(server.io_),
      soft_limit_timer_(server.io_) {}

void Connection::start() {
  socket_.non_blocking(true);
  server_.handler_.on_open(*this);
  asio::co_spawn(server_.io_, read_loop(), [self = shared_from_this()](std::exception_ptr error) {
    if (!error) return;
    // A handler threw (e.g. out of memory): this connection cannot go on, the daemon can.
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& exception) {
      spdlog::error("closing a connection after an error: {}", exception.what());
    }
    self->close();
  });
}

asio::awaitable<void> Connection::read_loop() {
  auto self = shared_from_this();
  while (!closing_ && !closed_) {
    boost::system::error_code ec;
    if (output_.bytes() > server_.limits_.pause_reading_bytes) {
      // The client is not reading its replies: stop reading its requests until it catches up.
      reading_resumed_.expires_at(asio::steady_timer::time_point::max());
      co_await reading_resumed_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (!backlog_.empty()) {
      // Lines read before a pause are served before anything new is read.
      std::string input = std::move(backlog_);
      backlog_.clear();
      dispatch_batch([&] {
        consume_input(input);
        return ReadOutcome::kOpen;
      });
      continue;
    }
    // async_read_some rather than waiting for readability and reading ourselves: a wait makes
    // Asio re-arm epoll (epoll_ctl) every time, while a read is tried at once and only then
    // waited for. A request/response round trip costs epoll_wait, read, sendmsg and one read
    // that finds nothing; measured faster than the wait (docs/benchmarks.md).
    const std::size_t count = co_await socket_.async_read_some(
        asio::buffer(first_read_), asio::redirect_error(asio::use_awaitable, ec));
    if (closing_ || closed_) break;
    if (ec) {
      if (ec != asio::error::eof) {
        spdlog::debug("read failed: {}", ec.message());
        close();
        co_return;
      }
      // At end of input the client may still wait for its replies (e.g. `nc -N`).
      dispatch_batch([&] {
        serve_final_line();
        return ReadOutcome::kEndOfInput;
      });
      close_after_flush();
      co_return;
    }
    const ReadOutcome outcome = dispatch_batch([&] {
      consume_input(std::string_view(first_read_.data(), count));
      return count == first_read_.size() ? drain_socket() : ReadOutcome::kOpen;
    });
    if (outcome == ReadOutcome::kEndOfInput) {
      close_after_flush();
      co_return;
    }
    if (outcome == ReadOutcome::kFailed) {
      close();
      co_return;
    }
  }
}

template <typename Batch>
Connection::ReadOutcome Connection::dispatch_batch(Batch batch) {
  // This connection's replies to the whole batch go out in one write right after it.
  dispatching_ = true;
  const ReadOutcome outcome = batch();
  dispatching_ = false;
  if (flush_after_dispatch_) {
    flush_after_dispatch_ = false;
    if (!waiting_writable_) flush();
  }
  return outcome;
}

bool Connection::input_paused() const {
  return overflowed_ || closing_ || closed_ || !backlog_.empty() ||
         output_.bytes() > server_.limits_.pause_reading_bytes;
}

Connection::ReadOutcome Connection::drain_socket() {
  std::array<char, 64 * 1024>& scratch = server_.read_scratch_;
  std::size_t budget = kDrainBudgetBytes;
  while (budget > 0 && !input_paused()) {
    const ssize_t count = ::read(socket_.native_handle(), scratch.data(), scratch.size());
    if (count > 0) {
      consume_input(std::string_view(scratch.data(), static_cast<std::size_t>(count)));
      budget -= std::min(budget, static_cast<std::size_t>(count));
      continue;
    }
    if (count == 0) {
      serve_final_line();
      return ReadOutcome::kEndOfInput;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadOutcome::kOpen;
    spdlog::debug("read failed: {}", std::strerror(errno));
    return ReadOutcome::kFailed;
  }
  return ReadOutcome::kOpen;
}

void Connection::consume_input(std::string_view data) {
  const std::size_t limit = server_.limits_.max_line_bytes;
  while (!data.empty() && !closing_ && !closed_) {
    if (input_paused()) {
      // Enough output is waiting (or the connection is going): keep the unserved input, a
      // bounded amount (at most one turn's read), for when the client has caught up.
      backlog_.append(pending_);
      backlog_.append(data);
      pending_.clear();
      return;
    }
    const std::size_t newline = data.find('\n');
    if (newline == std::string_view::npos) {
      if (pending_.size() + data.size() > limit) return reject_long_line();
      pending_.append(data);
      return;
    }
    std::string_view piece = data.substr(0, newline);
    data.remove_prefix(newline + 1);
    if (pending_.empty()) {
      if (piece.size() > limit + 1) return reject_long_line();
      dispatch_line(piece);
      continue;
    }
    if (pending_.size() + piece.size() > limit + 1) return reject_long_line();
    pending_.append(piece);
    dispatch_line(pending_);
    pending_.clear();
    if (pending_.capacity() > kKeptPendingCapacity) pending_.shrink_to_fit();
  }
}

void Connection::serve_final_line() {
  // A last line with no newline before the end of input is still a line (as jq and NDJSON
  // readers treat it): the client half-closed after writing it and waits for the reply.
  if (pending_.empty() || closing_ || closed_) return;
  std::string line = std::move(pending_);
  pending_.clear();
  dispatch_line(line);
}

void Connection::dispatch_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > server_.limits_.max_line_bytes) return reject_long_line();
  if (is_blank(line)) return;
  try {
    server_.handler_.on_line(*this, line);
  } catch (const net::RequestFailed& failure) {
    // The handler has answered the client with an error; this connection and its state are
    // still sound, so it carries on.
    spdlog::error("{}", failure.what());
  }
}

void Connection::reject_long_line() {
  pending_.clear();
  pending_.shrink_to_fit();
  send(server_.handler_.refusal_line(TransportRefusal::kLineTooLong,
                                     server_.limits_.max_line_bytes));
  close_after_flush();
}

void Connection::send(std::string line) { enqueue(std::move(line)); }

void Connection::send(SharedBytes line) { enqueue(std::move(line)); }

template <typename Line>
void Connection::enqueue(Line line) {
  if (closed_ || overflowed_) return;
  if (!output_.push(std::move(line))) return drop_slow_consumer();
  if (output_.over_soft_since() && !soft_limit_armed_) watch_soft_limit();
  schedule_flush();
}

void Connection::watch_soft_limit() {
  // The queue is checked on every push; this timer catches a queue that crossed the soft limit and
  // then stopped growing (its reader stalled, and nothing new is sent to it).
  soft_limit_armed_ = true;
  soft_limit_timer_.expires_at(*output_.over_soft_since() + server_.limits_.output.soft_duration);
  soft_limit_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->soft_limit_armed_ = false;
    if (ec || self->closed_ || self->overflowed_ || !self->output_.over_soft_since()) return;
    if (self->output_.past_soft_duration()) return self->drop_slow_consumer();
    self->watch_soft_limit();  // it dipped under and rose again: wait for the new deadline
  });
}

void Connection::check_soft_limit() {
  if (closed_ || overflowed_) return;
  if (output_.past_soft_duration()) drop_slow_consumer();
}

void Connection::drop_slow_consumer() {
  overflowed_ = true;
  ++server_.dropped_slow_consumers_;
  spdlog::warn("closing a slow consumer: {} bytes of output queued", output_.bytes());
  // Closing here could run inside a fan-out over the subscriber list; do it next turn.
  asio::post(server_.io_, [self = shared_from_this()] { self->close(); });
}

void Connection::schedule_flush() {
  if (flush_scheduled_ || waiting_writable_) return;
  if (dispatching_) {
    flush_after_dispatch_ = true;
    return;
  }
  flush_scheduled_ = true;
  // Deferred to the end of this loop turn, so everything queued meanwhile goes in one sendmsg.
  asio::post(server_.io_, [self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush();
  });
}

void Connection::flush() {
  if (closed_) return;
  std::array<iovec, kMaxIovecs> vectors;
  while (!output_.empty()) {
    msghdr message{};
    message.msg_iov = vectors.data();
    message.msg_iovlen = output_.gather(vectors.data(), vectors.size());
    const ssize_t written = ::sendmsg(socket_.native_handle(), &message, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        waiting_writable_ = true;
        socket_.async_wait(asio::socket_base::wait_write,
                           [self = shared_from_this()](boost::system::error_code ec) {
                             self->waiting_writable_ = false;
                             if (!ec) self->flush();
                           });
        return;
      }
      spdlog::debug("write failed: {}", std::strerror(errno));
      close();
      return;
    }
    output_.consume(static_cast<std::size_t>(written));
  }
  if (closing_) {
    close();
    return;
  }
  reading_resumed_.cancel();
}

void Connection::close_after_flush() {
  if (closed_) return;
  closing_ = true;
  if (output_.empty() && !waiting_writable_) {
    close();
  } else {
    schedule_flush();
  }
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  server_.handler_.on_close(*this);
  boost::system::error_code ignored;
  socket_.close(ignored);
  reading_resumed_.cancel();
  soft_limit_timer_.cancel();
  output_ = OutputQueue(server_.limits_.output, server_.clock_);
  pending_.clear();
  pending_.shrink_to_fit();
  backlog_.clear();
  backlog_.shrink_to_fit();
  server_.remove(this);
}

}  // namespace photon::net
