// WebSocket and event-stream peers: one writer at a time per stream, the Unix socket's output
// bounds, and a registry that closes them all at shutdown.
#include "net/web_streams.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <array>

// GCC 12 mistakes the coroutine frame's sized operator delete for a mismatch with its operator new
// when it inlines a virtual coroutine's frame (GCC bug 109224); the pair is Asio's own.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace photon::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// How much queued output one write of an event stream takes.
constexpr std::size_t kEventWriteBytes = 64 * 1024;
// The first bytes of an event stream: the response header (the body ends when the connection
// does; the caller's extra header lines go between), then how long a browser waits before
// reconnecting.
constexpr std::string_view kEventStreamHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-store\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Connection: close\r\n";
constexpr std::string_view kEventStreamStart = "\r\nretry: 2000\n\n";
constexpr std::string_view kKeepaliveComment = ": keepalive\n\n";
// A WebSocket's read buffer that grew past this gives its memory back after the message.
constexpr std::size_t kKeptReadBytes = 64 * 1024;

std::string_view without_newline(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  return line;
}

}  // namespace

// What both kinds of stream share: the output queue and its bounds, one writer coroutine at a
// time, closing (the handler is told once), and leaving the registry.
// Lifetime: owned by the registry while open; coroutines and handlers hold shared_ptrs.
// Invariants: once closed_ is set the handler has been told and nothing more is queued or read;
// writing_ is true exactly while a writer coroutine runs.
// Thread rule: the event loop thread only.
class WebStream : public Peer, public std::enable_shared_from_this<WebStream> {
 public:
  explicit WebStream(WebStreams& owner)
      : owner_(owner), output_(owner.limits_.output, owner.clock_) {}

  void send(SharedBytes line) override { enqueue_line(*line); }
  void send(std::string line) override { enqueue_line(line); }

  void close_after_flush() override {
    if (closed_) return;
    closing_ = true;
    if (!writing_) finish_writing();
  }

  // Closes the transport now; queued output is dropped.
  void close() {
    if (closed_) return;
    closed_ = true;
    if (opened_) owner_.handler_.on_close(*this);
    close_transport();
    if (soft_limit_timer_) soft_limit_timer_->cancel();
    output_ = OutputQueue(owner_.limits_.output, owner_.clock_);
    on_closed();
    owner_.remove(this);
  }

  // Shutdown: says goodbye if the kind of stream has a way to, then closes.
  virtual void go_away() { close(); }

  // Drops the stream if its output has stayed over the soft limit for the soft duration by the
  // clock now (a timer checks this too; a test clock moved by hand reaches it first).
  void check_soft_limit() {
    if (closed_ || overflowed_) return;
    if (output_.past_soft_duration()) drop_slow_consumer();
  }

 protected:
  // Turns one line of the handler's into what the client gets (empty: nothing).
  virtual void enqueue_line(std::string_view line) = 0;
  // Writes everything queued; returns false when the stream failed (it is closed then).
  virtual asio::awaitable<bool> write_queued() = 0;
  // When output has drained and close_after_flush was asked for.
  virtual void finish_writing() { close(); }
  virtual void close_transport() = 0;
  virtual void on_closed() {}

  void open_in_handler() {
    opened_ = true;
    owner_.handler_.on_open(*this);
  }

  // Queues bytes for the client and makes sure a writer runs.
  void enqueue(std::string bytes) {
    if (closed_ || closing_ || overflowed_) return;
    if (!output_.push(std::move(bytes))) return drop_slow_consumer();
    if (output_.over_soft_since() && !soft_limit_armed_) watch_soft_limit();
    if (!writing_) start_writer();
  }

  void start_writer() {
    writing_ = true;
    asio::co_spawn(owner_.io_, run_writer(), [self = shared_from_this()](std::exception_ptr error) {
      if (error) self->close();
    });
  }

  void log_failure(std::string_view what, const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& exception) {
      spdlog::error("{}: closing after an error: {}", what, exception.what());
    } catch (...) {
      spdlog::error("{}: closing after an error", what);
    }
  }

  WebStreams& owner_;
  OutputQueue output_;
  bool closed_ = false;
  bool closing_ = false;  // close once the queued output is written
  bool opened_ = false;   // the handler was told of the peer
  bool overflowed_ = false;
  bool writing_ = false;

 private:
  asio::awaitable<void> run_writer() {
    auto self = shared_from_this();
    const bool ok = co_await write_queued();
    writing_ = false;
    if (ok && !closed_ && closing_) finish_writing();
  }

  void drop_slow_consumer() {
    overflowed_ = true;
    ++owner_.dropped_slow_consumers_;
    spdlog::warn("closing a slow browser stream: {} bytes of output queued", output_.bytes());
    // This may run inside a fan-out over the subscriber list: close on the next turn.
    asio::post(owner_.io_, [self = shared_from_this()] { self->close(); });
  }

  void watch_soft_limit() {
    soft_limit_armed_ = true;
    soft_limit_timer_ = std::make_unique<asio::steady_timer>(owner_.io_);
    soft_limit_timer_->expires_at(*output_.over_soft_since() + owner_.limits_.output.soft_duration);
    soft_limit_timer_->async_wait([self = shared_from_this()](error_code ec) {
      self->soft_limit_armed_ = false;
      if (ec || self->closed_ || self->overflowed_ || !self->output_.over_soft_since()) return;
      if (self->output_.past_soft_duration()) return self->drop_slow_consumer();
      self->watch_soft_limit();
    });
  }

  std::unique_ptr<asio::steady_timer> soft_limit_timer_;
  bool soft_limit_armed_ = false;
};

// The daemon's protocol over a WebSocket: each text message is one request, each line the
// handler sends is one text message (its newline dropped).
class WebSocketStream final : public WebStream {
 public:
  WebSocketStream(WebStreams& owner, tcp::socket socket)
      : WebStream(owner), ws_(std::move(socket)), reading_resumed_(owner.io_) {}

  void start(http::request<http::string_body> upgrade) {
    set_idle_timeout(true);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "photond"); }));
    ws_.read_message_max(owner_.limits_.max_message_bytes);
    asio::co_spawn(owner_.io_, serve(std::move(upgrade)),
                   [self = shared_from_this(), this](std::exception_ptr error) {
                     if (!error) return;
                     log_failure("websocket", error);
                     close();
                   });
  }

  void go_away() override {
    if (closed_) return;
    if (!opened_ || closing_handshake_) return close();
    closing_handshake_ = true;
    ws_.async_close(websocket::close_code::going_away,
                    [self = shared_from_this(), this](error_code) { close(); });
  }

 protected:
  void enqueue_line(std::string_view line) override { enqueue(std::string(line)); }

  asio::awaitable<bool> write_queued() override {
    auto self = shared_from_this();
    while (!closed_ && !output_.empty()) {
      // Lines never span chunks; the front chunk starts with a whole line. The frame is copied
      // out because a push during the write may move the queue's tail buffer.
      iovec front{};
      output_.gather(&front, 1);
      const std::string_view chunk(static_cast<const char*>(front.iov_base), front.iov_len);
      const std::size_t end = chunk.find('\n');
      const std::size_t line_bytes = end == std::string_view::npos ? chunk.size() : end + 1;
      frame_.assign(chunk.substr(0, end == std::string_view::npos ? chunk.size() : end));
      output_.consume(line_bytes);
      error_code ec;
      ws_.text(true);
      co_await ws_.async_write(asio::buffer(frame_), asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return false;
      if (ec) {
        spdlog::debug("websocket write failed: {}", ec.message());
        close();
        co_return false;
      }
      if (output_.bytes() <= owner_.limits_.pause_reading_bytes) reading_resumed_.cancel();
    }
    frame_.clear();
    frame_.shrink_to_fit();
    co_return true;
  }

  void finish_writing() override {
    if (closing_handshake_) return;
    closing_handshake_ = true;
    ws_.async_close(websocket::close_code::normal,
                    [self = shared_from_this(), this](error_code) { close(); });
  }

  void close_transport() override {
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
    reading_resumed_.cancel();
  }

 private:
  asio::awaitable<void> serve(http::request<http::string_body> upgrade) {
    auto self = shared_from_this();
    error_code ec;
    co_await ws_.async_accept(upgrade, asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) co_return;
    if (ec) {
      spdlog::debug("websocket handshake failed: {}", ec.message());
      close();
      co_return;
    }
    open_in_handler();
    beast::flat_buffer buffer;
    while (!closed_ && !closing_) {
      if (output_.bytes() > owner_.limits_.pause_reading_bytes) {
        // The client is not reading its replies: stop reading its requests until it catches up.
        // Without a read, Beast's idle timer would close it after the ping timeout; a slow
        // reader is the output bounds' to judge, so the idle timeout waits meanwhile.
        set_idle_timeout(false);
        reading_resumed_.expires_at(asio::steady_timer::time_point::max());
        co_await reading_resumed_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        set_idle_timeout(true);
        continue;
      }
      co_await ws_.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return;
      if (ec == websocket::error::message_too_big) {
        // Beast has sent the close frame (1009); the client hears why from the code.
        spdlog::debug("websocket message over {} bytes; closing", owner_.limits_.max_message_bytes);
        close();
        co_return;
      }
      if (ec) {
        if (ec != websocket::error::closed) spdlog::debug("websocket read: {}", ec.message());
        close();
        co_return;
      }
      if (!ws_.got_text()) {
        send(owner_.handler_.refusal_line(TransportRefusal::kBinaryMessage, 0));
      } else {
        std::string_view message(static_cast<const char*>(buffer.data().data()), buffer.size());
        while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
          message.remove_suffix(1);
        }
        if (message.find_first_not_of(" \t\r\n") != std::string_view::npos) {
          try {
            owner_.handler_.on_line(*this, message);
          } catch (const RequestFailed& failure) {
            // Answered with an error already; the WebSocket carries on (as a socket does).
            spdlog::error("{}", failure.what());
          }
        }
      }
      buffer.consume(buffer.size());
      // One large request must not pin its buffer for the WebSocket's life.
      if (buffer.capacity() > kKeptReadBytes) buffer.shrink_to_fit();
    }
  }

  void set_idle_timeout(bool on) {
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    // Beast pings after half the idle timeout and closes when nothing came back by its end (the
    // server's suggested settings leave pings off, so a vanished browser would stay 5 minutes).
    timeouts.idle_timeout = on ? std::chrono::steady_clock::duration(owner_.limits_.keepalive * 2)
                               : websocket::stream_base::none();
    timeouts.keep_alive_pings = on;
    ws_.set_option(timeouts);
  }

  websocket::stream<tcp::socket> ws_;
  asio::steady_timer reading_resumed_;
  std::string frame_;
  bool closing_handshake_ = false;
};

// Channel messages as Server-Sent Events. The client sends nothing after its request; reading
// only notices that it went away.
class EventStream final : public WebStream {
 public:
  EventStream(WebStreams& owner, tcp::socket socket, StreamEventOf event_of)
      : WebStream(owner),
        socket_(std::move(socket)),
        keepalive_(owner.io_),
        event_of_(event_of ? std::move(event_of) : owner.protocol_.event_of) {}

  void start(std::string_view extra_headers, const std::function<void(Peer&)>& subscribe) {
    enqueue(std::string(kEventStreamHead).append(extra_headers).append(kEventStreamStart));
    open_in_handler();
    subscribe(*this);
    if (closed_) return;
    asio::co_spawn(owner_.io_, watch_client(),
                   [self = shared_from_this(), this](std::exception_ptr error) {
                     if (!error) return;
                     log_failure("event stream", error);
                     close();
                   });
    arm_keepalive();
  }

 protected:
  void enqueue_line(std::string_view line) override {
    line = without_newline(line);
    const std::optional<StreamEvent> found = event_of_(line);
    if (!found) return;
    const std::string_view data = found->data.empty() ? line : std::string_view(found->data);
    std::string event;
    event.reserve(found->name.size() + found->id.size() + data.size() + 24);
    if (!found->name.empty()) event.append("event: ").append(found->name).append("\n");
    if (!found->id.empty()) event.append("id: ").append(found->id).append("\n");
    event.append("data: ").append(data).append("\n\n");
    enqueue(std::move(event));
    if (found->last) close_after_flush();
  }

  asio::awaitable<bool> write_queued() override {
    auto self = shared_from_this();
    while (!closed_ && !output_.empty()) {
      std::array<iovec, 64> vectors;
      const std::size_t count = output_.gather(vectors.data(), vectors.size());
      batch_.clear();
      for (std::size_t i = 0; i < count && batch_.size() < kEventWriteBytes; ++i) {
        batch_.append(static_cast<const char*>(vectors[i].iov_base), vectors[i].iov_len);
      }
      output_.consume(batch_.size());
      error_code ec;
      co_await asio::async_write(socket_, asio::buffer(batch_),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return false;
      if (ec) {
        spdlog::debug("event stream write failed: {}", ec.message());
        close();
        co_return false;
      }
    }
    batch_.clear();
    batch_.shrink_to_fit();
    co_return true;
  }

  void close_transport() override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    keepalive_.cancel();
  }

 private:
  asio::awaitable<void> watch_client() {
    auto self = shared_from_this();
    std::array<char, 512> sink;
    error_code ec;
    while (!closed_) {
      co_await socket_.async_read_some(asio::buffer(sink),
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return;
      if (ec) {
        close();
        co_return;
      }
    }
  }

  void arm_keepalive() {
    keepalive_.expires_after(owner_.limits_.keepalive);
    keepalive_.async_wait([self = shared_from_this(), this](error_code ec) {
      if (ec || closed_) return;
      if (output_.empty()) enqueue(std::string(kKeepaliveComment));
      arm_keepalive();
    });
  }

  tcp::socket socket_;
  asio::steady_timer keepalive_;
  StreamEventOf event_of_;
  std::string batch_;
};

// ---- WebStreams

WebStreams::WebStreams(asio::io_context& io, PeerHandler& handler, const Clock& clock,
                       WebStreamLimits limits, WebStreamProtocol protocol)
    : io_(io), handler_(handler), clock_(clock), limits_(limits), protocol_(std::move(protocol)) {}

WebStreams::~WebStreams() {
  auto open = std::move(streams_);
  streams_.clear();
  for (auto& [raw, stream] : open) stream->close();
}

void WebStreams::open_websocket(tcp::socket socket, http::request<http::string_body> upgrade) {
  auto stream = std::make_shared<WebSocketStream>(*this, std::move(socket));
  add(stream);
  stream->start(std::move(upgrade));
}

void WebStreams::open_event_stream(tcp::socket socket, std::string extra_headers,
                                   const std::function<void(Peer&)>& subscribe,
                                   StreamEventOf event_of) {
  auto stream = std::make_shared<EventStream>(*this, std::move(socket), std::move(event_of));
  add(stream);
  stream->start(extra_headers, subscribe);
}

void WebStreams::add(std::shared_ptr<WebStream> stream) {
  WebStream* raw = stream.get();
  streams_.emplace(raw, std::move(stream));
  // Shutting down: it goes at once (the caller refuses new streams before, this is the backstop
  // for one whose request was already being answered).
  if (closing_all_)
    asio::post(io_, [this, raw] {
      if (auto found = streams_.find(raw); found != streams_.end()) found->second->close();
    });
}

void WebStreams::check_output_deadlines() {
  // Dropping posts the close, so streams_ does not change under the loop.
  for (auto& [raw, stream] : streams_) stream->check_soft_limit();
}

void WebStreams::remove(WebStream* stream) {
  auto found = streams_.find(stream);
  if (found == streams_.end()) return;
  // Keep the object alive until the caller (a member of it) has returned.
  asio::post(io_, [keep = std::move(found->second)] {});
  streams_.erase(found);
  finish_close_if_done();
}

void WebStreams::close_all(std::chrono::milliseconds grace, std::function<void()> done) {
  if (closing_all_) return;
  closing_all_ = true;
  on_closed_ = std::move(done);
  std::vector<std::shared_ptr<WebStream>> open;
  for (auto& [raw, stream] : streams_) open.push_back(stream);
  for (auto& stream : open) stream->go_away();
  grace_timer_ = std::make_unique<asio::steady_timer>(io_, grace);
  grace_timer_->async_wait([this](error_code ec) {
    if (ec) return;
    std::vector<std::shared_ptr<WebStream>> remaining;
    for (auto& [raw, stream] : streams_) remaining.push_back(stream);
    for (auto& stream : remaining) stream->close();
  });
  finish_close_if_done();
}

void WebStreams::finish_close_if_done() {
  if (!closing_all_ || !streams_.empty() || !on_closed_) return;
  if (grace_timer_) grace_timer_->cancel();
  asio::post(io_, std::move(on_closed_));
  on_closed_ = nullptr;
}

}  // namespace photon::net
