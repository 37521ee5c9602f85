// Connection: line framing on input, coalesced sendmsg on output, slow-consumer cut-off.
#include "net/connection.hpp"

#include "net/unix_server.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

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

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

}  // namespace

Connection::Connection(asio::local::stream_protocol::socket socket, UnixServer& server)
    : socket_(std::move(socket)),
      server_(server),
      output_(server.limits_.output),
      reading_resumed_(server.io_) {}

void Connection::start() {
  socket_.non_blocking(true);
  server_.handler_.on_open(*this);
  asio::co_spawn(server_.io_, read_loop(), asio::detached);
}

asio::awaitable<void> Connection::read_loop() {
  auto self = shared_from_this();
  const int fd = socket_.native_handle();
  while (!closing_ && !closed_) {
    boost::system::error_code ec;
    if (output_.bytes() > server_.limits_.pause_reading_bytes) {
      // The client is not reading its replies: stop reading its requests until it catches up.
      reading_resumed_.expires_at(asio::steady_timer::time_point::max());
      co_await reading_resumed_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    co_await socket_.async_wait(asio::socket_base::wait_read,
                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec || closing_ || closed_) break;
    const ssize_t count = ::read(fd, server_.read_scratch_.data(), server_.read_scratch_.size());
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      spdlog::debug("read failed: {}", std::strerror(errno));
      close();
      co_return;
    }
    if (count == 0) {
      // The client finished sending; it may still wait for replies (e.g. `nc -N`).
      close_after_flush();
      co_return;
    }
    // Replies to this batch of requests go out in one write right after it, without a trip
    // through the scheduler (the common request/response case).
    dispatching_ = true;
    consume_input(std::string_view(server_.read_scratch_.data(), static_cast<std::size_t>(count)));
    dispatching_ = false;
    if (flush_after_dispatch_) {
      flush_after_dispatch_ = false;
      if (!waiting_writable_) flush();
    }
  }
}

void Connection::consume_input(std::string_view data) {
  const std::size_t limit = server_.limits_.max_line_bytes;
  while (!data.empty() && !closing_ && !closed_) {
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

void Connection::dispatch_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > server_.limits_.max_line_bytes) return reject_long_line();
  if (is_blank(line)) return;
  server_.handler_.on_line(*this, line);
}

void Connection::reject_long_line() {
  pending_.clear();
  pending_.shrink_to_fit();
  send(protocol::error_line(
      protocol::messages::kUnknownId,
      protocol::fill_message(protocol::messages::kLineTooLong,
                             std::to_string(server_.limits_.max_line_bytes))));
  close_after_flush();
}

void Connection::send(std::string line) { send(make_shared_bytes(std::move(line))); }

void Connection::send(SharedBytes line) {
  if (closed_ || overflowed_) return;
  if (!output_.push(std::move(line), server_.clock_.steady())) {
    overflowed_ = true;
    ++server_.dropped_slow_consumers_;
    spdlog::warn("closing a slow consumer: {} bytes of output queued", output_.bytes());
    // Closing here could run inside a fan-out over the subscriber list; do it next turn.
    asio::post(server_.io_, [self = shared_from_this()] { self->close(); });
    return;
  }
  schedule_flush();
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
  output_ = OutputQueue(server_.limits_.output);
  pending_.clear();
  pending_.shrink_to_fit();
  server_.remove(this);
}

}  // namespace photon::net
