// HttpServer and its connections: Beast parsing with limits, a deadline per phase, keep-alive,
// responses in order, lingering close, graceful shutdown.
#include "net/http_server.hpp"

#include "common/text.hpp"
#include "net/accept_backoff.hpp"
#include "protocol/error_messages.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <sstream>

namespace photon::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

// The sentences of the server's own error responses are the catalogue's.
namespace messages {
using namespace protocol::messages::http;
using protocol::messages::kTooManyConnections;
constexpr std::string_view kShuttingDown = protocol::sentence_of(RefusalCode::kShuttingDown);
}  // namespace messages

// After the last response, how long and how much input is read and dropped before closing (see
// HttpConnection::linger).
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 4u << 20;
constexpr std::size_t kLingerReadBytes = 16 * 1024;
// A read buffer that grew past this (a large body) gives its memory back between requests.
constexpr std::size_t kKeptBufferCapacity = 64 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// Beast's parse errors (as opposed to socket errors).
bool is_http_error(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_method).category();
}

std::string error_body(std::string_view message) {
  return boost::json::serialize(boost::json::object{{"error", message}});
}

HttpResponse error_response(unsigned status, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.body = error_body(message);
  response.close = true;
  return response;
}

std::string with_value(std::string_view message_template, std::size_t value) {
  return protocol::fill_message(message_template, std::to_string(value));
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

// RFC 9110 token characters.
bool is_token(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kSymbols.find(c) != std::string_view::npos;
  });
}

// Headers the server sets itself: one from the handler would contradict them.
bool is_server_field(std::string_view name) {
  return beast::iequals(name, "content-length") || beast::iequals(name, "connection") ||
         beast::iequals(name, "transfer-encoding");
}

// Why `response` cannot be sent as it is, or nullptr.
const char* response_problem(const HttpResponse& response) {
  if (response.status < 200 || response.status > 999) return "status out of range";
  for (const auto& [name, value] : response.headers) {
    if (!is_token(name)) return "header name is not a token";
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return "header value contains CR, LF or NUL";
    }
  }
  return nullptr;
}

// The message for a valid `response`: Content-Type defaulted, Content-Length and Connection set.
http::response<http::string_body> to_message(HttpResponse response, unsigned version, bool head,
                                             bool keep_alive) {
  http::response<http::string_body> message;
  message.version(version);
  message.result(response.status);
  bool has_content_type = false;
  for (const auto& [name, value] : response.headers) {
    if (is_server_field(name)) continue;
    has_content_type = has_content_type || beast::iequals(name, "content-type");
    message.insert(name, value);
  }
  // 204 and 304 have no body and no Content-Length (RFC 9110 8.6).
  if (response.status != 204 && response.status != 304) {
    if (!has_content_type) message.set(http::field::content_type, "application/json");
    message.content_length(response.body.size());
    if (!head) message.body() = std::move(response.body);
  }
  if (!keep_alive) {
    message.set(http::field::connection, "close");
  } else if (version == 10) {
    message.set(http::field::connection, "keep-alive");
  }
  return message;
}

double millis_since(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

}  // namespace

// One client connection. A coroutine (serve) reads a request, hands it to the handler, waits for
// the response, writes it, and repeats while the connection is kept alive; the next request is
// read only after the previous response is written, so pipelined requests are answered in order.
// Lifetime: owned by the server's table while open; the coroutine holds a shared_ptr, the
// request's respond a weak_ptr, so a late respond finds the connection gone or closed.
// Invariants: at most one socket operation is pending, and the deadline timer bounds it (except
// while the handler works: its time is the handler's, bounded by shutdown's grace); once closed_
// is set the socket is closed and nothing more is read, written or handed to the handler;
// response_ is set only in State::kHandling, for the request being handled.
// Thread rule: the event loop thread only.
class HttpConnection final : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket socket, HttpServer& server);

  void start();
  // For shutdown: closes now if no request is in progress; otherwise after its response (which
  // carries Connection: close since the server is stopping).
  void close_when_idle();
  // Closes now; a response not yet written is dropped.
  void close();
  // Gives the socket (and what was read past the request) to `take_over` and leaves the server.
  void hand_over(std::function<void(tcp::socket, std::string)> take_over);
  // The server is being destroyed: forget it, then close.
  void abandon();
  // The handler's answer to request `request_id`; ignored unless that request is awaiting it.
  void deliver(std::uint64_t request_id, HttpResponse response);
  // Whether request `request_id` is being handled and not answered yet.
  bool awaiting(std::uint64_t request_id) const {
    return !closed_ && state_ == State::kHandling && request_id == request_id_ && !response_;
  }
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  enum class State { kIdle, kReadingHeader, kReadingBody, kHandling, kWriting, kLingering };

  asio::awaitable<void> serve();
  // Reads one request into parser_. False: the connection is done (closed, or an error response
  // was sent and it is closing).
  asio::awaitable<bool> read_request(bool first, SteadyClock::time_point opened);
  // Answers a failed read: 408, 413, 431 or 400, or a quiet close if the client went away.
  asio::awaitable<void> reject(const error_code& ec);
  asio::awaitable<void> send_error(unsigned status, std::string message);
  // Hands the parsed request to the handler and waits for its response (or the close).
  asio::awaitable<std::optional<HttpResponse>> handle_request();
  // Writes `response`; false if the connection is done (it was the last response, or it failed).
  asio::awaitable<bool> write_response(HttpResponse response, unsigned version, bool head,
                                       bool keep_alive);
  asio::awaitable<void> linger();
  // Bounds the next socket operation: at `deadline` it is cancelled and timed_out_ is set.
  void arm(SteadyClock::time_point deadline);
  void disarm();
  bool server_stopping() const { return server_ == nullptr || server_->stopping_; }
  // The id of the request being read or served, allocated when first needed (so ids are not
  // spent on connections that only idle).
  std::uint64_t request_id();

  tcp::socket socket_;
  HttpServer* server_;  // null once closed
  const HttpLimits limits_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer deadline_;
  asio::steady_timer response_ready_;  // cancelled when response_ is set or the connection closes
  std::uint64_t deadline_generation_ = 0;
  std::optional<HttpResponse> response_;
  State state_ = State::kIdle;
  std::uint64_t request_id_ = 0;
  std::string method_;  // of the request being served, for the log
  std::string target_;
  SteadyClock::time_point started_;
  bool timed_out_ = false;
  bool closed_ = false;
};

namespace {

// What the copies of one request's HttpRespond share: whether it was called.
class ResponseSlot {
 public:
  ResponseSlot(std::weak_ptr<HttpConnection> connection, std::uint64_t request_id)
      : connection_(std::move(connection)), request_id_(request_id) {}

  ResponseSlot(const ResponseSlot&) = delete;
  ResponseSlot& operator=(const ResponseSlot&) = delete;

  ~ResponseSlot() {
    if (answered_) return;
    // Every copy is gone uncalled: answer for the handler rather than leave the client waiting.
    // The last copy may die on another thread, so the answer goes through the loop.
    auto connection = connection_.lock();
    if (!connection) return;
    asio::post(connection->executor(), [connection, id = request_id_] {
      if (!connection->awaiting(id)) return;  // closed meanwhile: nobody to answer
      spdlog::error("req {}: the handler dropped the request without answering; answering 500", id);
      connection->deliver(id, error_response(500, messages::kNotAnswered));
    });
  }

  void respond(HttpResponse response) {
    if (answered_) {
      spdlog::warn("req {}: answered twice; the second response is ignored", request_id_);
      return;
    }
    answered_ = true;
    if (auto connection = connection_.lock()) connection->deliver(request_id_, std::move(response));
  }

 private:
  std::weak_ptr<HttpConnection> connection_;
  std::uint64_t request_id_;
  bool answered_ = false;
};

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return std::string_view(value);
  }
  return std::nullopt;
}

// ---- HttpConnection

HttpConnection::HttpConnection(tcp::socket socket, HttpServer& server)
    : socket_(std::move(socket)),
      server_(&server),
      limits_(server.limits_),
      deadline_(socket_.get_executor()),
      response_ready_(socket_.get_executor()) {
  error_code ec;
  const tcp::endpoint remote = socket_.remote_endpoint(ec);
  remote_ = ec ? "(unknown)" : endpoint_text(remote);
  // Responses are single writes; without Nagle one after a 100 Continue is not held back.
  socket_.set_option(tcp::no_delay(true), ec);
}

void HttpConnection::start() {
  asio::co_spawn(socket_.get_executor(), serve(),
                 [self = shared_from_this()](std::exception_ptr error) {
                   if (!error) return;
                   // Out of memory, say: this connection cannot go on, the daemon can.
                   try {
                     std::rethrow_exception(error);
                   } catch (const std::exception& exception) {
                     spdlog::error("req {}: closing the connection from {} after an error: {}",
                                   self->request_id(), self->remote_, exception.what());
                   } catch (...) {
                     spdlog::error("req {}: closing the connection from {} after an error",
                                   self->request_id(), self->remote_);
                   }
                   self->close();
                 });
}

std::uint64_t HttpConnection::request_id() {
  if (request_id_ == 0 && server_ != nullptr) request_id_ = server_->next_request_id();
  return request_id_;
}

void HttpConnection::arm(SteadyClock::time_point deadline) {
  timed_out_ = false;
  deadline_.expires_at(deadline);
  deadline_.async_wait(
      [weak = weak_from_this(), generation = ++deadline_generation_](error_code ec) {
        auto self = weak.lock();
        if (ec || !self || self->closed_ || generation != self->deadline_generation_) return;
        self->timed_out_ = true;
        error_code ignored;
        self->socket_.cancel(ignored);
      });
}

void HttpConnection::disarm() {
  ++deadline_generation_;
  deadline_.cancel();
}

asio::awaitable<void> HttpConnection::serve() {
  auto self = shared_from_this();
  const auto opened = SteadyClock::now();
  for (std::size_t served = 0;; ++served) {
    request_id_ = 0;
    method_.clear();
    target_.clear();
    if (!co_await read_request(served == 0, opened)) co_return;

    const auto& header = parser_->get();
    const unsigned version = header.version();
    const bool head = header.method() == http::verb::head;
    const bool keep_alive = header.keep_alive() && served + 1 < limits_.max_requests_per_connection;
    std::optional<HttpResponse> response = co_await handle_request();
    if (!response) co_return;  // closed meanwhile
    if (response->take_over) {
      if (!server_stopping()) {
        hand_over(std::move(response->take_over));
        co_return;
      }
      // Shutting down: a stream opened now would outlive the streams' own shutdown.
      response = error_response(503, messages::kShuttingDown);
    }
    const bool last = !keep_alive || response->close || server_stopping();
    if (!co_await write_response(std::move(*response), version, head, !last)) co_return;

    if (buffer_.capacity() > kKeptBufferCapacity && buffer_.size() <= kKeptBufferCapacity) {
      buffer_.shrink_to_fit();
    }
  }
}

asio::awaitable<bool> HttpConnection::read_request(bool first, SteadyClock::time_point opened) {
  error_code ec;
  state_ = State::kIdle;
  if (server_->stopping_) {
    // The shutdown began while the last response was being written.
    close();
    co_return false;
  }
  // A new connection must complete its first request's headers within header_timeout of
  // connecting. A kept-alive one may wait keep_alive_timeout for the first byte of its next
  // request, and then has header_timeout for the headers. Waiting for that byte costs no parser.
  if (first) arm(opened + limits_.header_timeout);
  if (buffer_.size() == 0) {
    if (!first) arm(SteadyClock::now() + limits_.keep_alive_timeout);
    co_await socket_.async_wait(tcp::socket::wait_read,
                                asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) co_return false;
    if (ec) {
      if (timed_out_) {
        spdlog::debug("req {}: closing the idle connection from {}", request_id(), remote_);
      }
      close();
      co_return false;
    }
  }

  state_ = State::kReadingHeader;
  started_ = SteadyClock::now();
  if (!first) arm(started_ + limits_.header_timeout);
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(limits_.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  // With a Content-Length over this, the header read itself fails (before any body is read).
  parser_->body_limit(limits_.max_body_bytes);
  co_await http::async_read_header(socket_, buffer_, *parser_,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (closed_) co_return false;
  if (ec) {
    co_await reject(ec);
    co_return false;
  }
  // Beast has checked the version: 1.0 or 1.1.
  const auto& header = parser_->get();
  method_ = header.method_string();
  target_ = header.target();
  if (!parser_->is_done()) {
    if (header.version() == 11 && beast::iequals(header[http::field::expect], "100-continue")) {
      arm(SteadyClock::now() + limits_.write_timeout);
      co_await asio::async_write(socket_, asio::buffer(kContinue),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) co_return false;
      if (ec) {
        spdlog::debug("req {}: writing 100 Continue to {} failed: {}", request_id(), remote_,
                      ec.message());
        close();
        co_return false;
      }
    }
    state_ = State::kReadingBody;
    arm(SteadyClock::now() + limits_.body_timeout);
    co_await http::async_read(socket_, buffer_, *parser_,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) co_return false;
    if (ec) {
      co_await reject(ec);
      co_return false;
    }
  }
  disarm();
  co_return true;
}

asio::awaitable<void> HttpConnection::reject(const error_code& ec) {
  if (method_.empty() && parser_) {
    // The request line is known even when a limit stopped the header (e.g. a Content-Length over
    // the body limit); for the log.
    method_ = parser_->get().method_string();
    target_ = parser_->get().target();
  }
  if (ec == asio::error::operation_aborted && timed_out_) {
    if (state_ == State::kReadingHeader) {
      co_await send_error(408,
                          with_value(messages::kHeaderTimeout,
                                     static_cast<std::size_t>(limits_.header_timeout.count())));
    } else {
      co_await send_error(408, with_value(messages::kBodyTimeout,
                                          static_cast<std::size_t>(limits_.body_timeout.count())));
    }
  } else if (ec == http::error::header_limit) {
    co_await send_error(431, with_value(messages::kHeaderTooLarge, limits_.max_header_bytes));
  } else if (ec == http::error::body_limit) {
    co_await send_error(413, with_value(messages::kBodyTooLarge, limits_.max_body_bytes));
  } else if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
             !is_http_error(ec)) {
    // The client went away (or the socket failed): nobody to answer.
    if (ec != http::error::end_of_stream) {
      spdlog::debug("req {}: the connection from {} ended mid-request: {}", request_id(), remote_,
                    ec.message());
    }
    close();
  } else {
    co_await send_error(400, protocol::fill_message(messages::kMalformed, ec.message()));
  }
}

asio::awaitable<void> HttpConnection::send_error(unsigned status, std::string message) {
  if (method_.empty()) {
    spdlog::info("req {}: {} {} (from {})", request_id(), status, message, remote_);
  } else {
    spdlog::info("req {}: {} {}: {} {} (from {})", request_id(), method_, target_, status, message,
                 remote_);
  }
  const unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
  co_await write_response(error_response(status, message), version, false, false);
}

asio::awaitable<std::optional<HttpResponse>> HttpConnection::handle_request() {
  state_ = State::kHandling;
  response_.reset();
  const std::uint64_t id = request_id();
  HttpRequest request;
  request.id = id;
  request.method = method_;
  request.target = target_;
  request.remote = remote_;
  http::request<http::string_body> message = parser_->release();
  parser_.reset();
  request.headers.reserve(static_cast<std::size_t>(std::distance(message.begin(), message.end())));
  for (const auto& field : message) {
    request.headers.emplace_back(ascii_lower(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(message.body());

  auto slot = std::make_shared<ResponseSlot>(weak_from_this(), id);
  try {
    server_->handler_.handle(std::move(request),
                             [slot](HttpResponse response) { slot->respond(std::move(response)); });
  } catch (const std::exception& exception) {
    spdlog::error("req {}: the handler failed: {}", id, exception.what());
    slot->respond(error_response(500, messages::kHandlerFailed));
  }
  // From here the handler's copies alone keep the slot: if it dropped them all uncalled, the slot
  // answers 500 now.
  slot.reset();
  if (closed_) co_return std::nullopt;
  if (!response_) {
    // A handler may answer later (a webhook waits for its method).
    response_ready_.expires_at(asio::steady_timer::time_point::max());
    error_code ignored;
    co_await response_ready_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (closed_ || !response_) co_return std::nullopt;
  }
  std::optional<HttpResponse> response = std::move(response_);
  response_.reset();
  co_return response;
}

void HttpConnection::deliver(std::uint64_t request_id, HttpResponse response) {
  if (!awaiting(request_id)) {
    spdlog::debug("req {}: response dropped: the connection was closed", request_id);
    return;
  }
  response_ = std::move(response);
  response_ready_.cancel();
}

asio::awaitable<bool> HttpConnection::write_response(HttpResponse response, unsigned version,
                                                     bool head, bool keep_alive) {
  state_ = State::kWriting;
  if (const char* problem = response_problem(response)) {
    spdlog::error("req {}: invalid response ({}); answering 500 instead", request_id(), problem);
    response = error_response(500, messages::kInvalidResponse);
  }
  const unsigned status = response.status;
  http::response<http::string_body> message =
      to_message(std::move(response), version, head, keep_alive);
  arm(SteadyClock::now() + limits_.write_timeout);
  error_code ec;
  co_await http::async_write(socket_, message, asio::redirect_error(asio::use_awaitable, ec));
  if (closed_) co_return false;
  disarm();
  if (!method_.empty()) {
    spdlog::debug("req {}: {} {} -> {} in {:.1f} ms (from {})", request_id(), method_, target_,
                  status, millis_since(started_), remote_);
  }
  if (ec) {
    spdlog::debug("req {}: writing the response to {} failed: {}", request_id(), remote_,
                  timed_out_ ? "timed out" : ec.message());
    close();
    co_return false;
  }
  if (!keep_alive) {
    co_await linger();
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> HttpConnection::linger() {
  // Closing a socket with unread input makes the kernel send RST, which can destroy the response
  // before the client has read it (a 413 sent while the body is still arriving). So half-close,
  // then read and drop input until the client closes too, for a bounded time and amount.
  state_ = State::kLingering;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  arm(SteadyClock::now() + kLingerTime);
  buffer_.clear();
  std::size_t dropped = 0;
  while (!ec && dropped < kLingerBytes) {
    dropped += co_await socket_.async_read_some(buffer_.prepare(kLingerReadBytes),
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) co_return;
  }
  close();
}

void HttpConnection::close_when_idle() {
  if (state_ == State::kIdle || state_ == State::kLingering) close();
}

void HttpConnection::close() {
  if (closed_) return;
  closed_ = true;
  disarm();
  response_ready_.cancel();
  response_.reset();
  parser_.reset();
  error_code ignored;
  socket_.close(ignored);
  if (HttpServer* server = std::exchange(server_, nullptr)) server->remove(this);
}

void HttpConnection::hand_over(std::function<void(tcp::socket, std::string)> take_over) {
  spdlog::debug("req {}: {} {} taken over in {:.1f} ms (from {})", request_id(), method_, target_,
                millis_since(started_), remote_);
  std::string read_ahead = beast::buffers_to_string(buffer_.data());
  tcp::socket socket = std::move(socket_);
  close();  // the moved-from socket_ is closed already: this only leaves the server's table
  take_over(std::move(socket), std::move(read_ahead));
}

void HttpConnection::abandon() {
  server_ = nullptr;
  close();
}

// ---- HttpServer

HttpServer::HttpServer(asio::io_context& io, HttpHandler& handler, HttpLimits limits)
    : io_(io),
      handler_(handler),
      limits_(limits),
      acceptor_(io),
      backoff_timer_(io),
      grace_timer_(io),
      alive_(std::make_shared<bool>(true)) {}

HttpServer::~HttpServer() {
  *alive_ = false;
  auto open = std::move(connections_);
  connections_.clear();
  for (auto& [raw, connection] : open) connection->abandon();
}

void HttpServer::listen(const asio::ip::address& address, std::uint16_t port) {
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  boost::system::error_code ec;
  acceptor_.bind(endpoint, ec);
  if (ec) {
    acceptor_.close();
    throw boost::system::system_error(ec, "bind " + endpoint_text(endpoint));
  }
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

tcp::endpoint HttpServer::local_endpoint() const { return acceptor_.local_endpoint(); }

void HttpServer::start() {
  asio::co_spawn(io_, accept_loop(alive_),
                 [this, alive = std::shared_ptr<const bool>(alive_)](std::exception_ptr error) {
                   if (!error || !*alive || stopping_) return;
                   // Something threw while admitting (out of memory, say): keep accepting.
                   try {
                     std::rethrow_exception(error);
                   } catch (const std::exception& exception) {
                     spdlog::error("http accept loop failed: {}; restarting it", exception.what());
                   } catch (...) {
                     spdlog::error("http accept loop failed; restarting it");
                   }
                   start();
                 });
}

asio::awaitable<void> HttpServer::accept_loop(std::shared_ptr<const bool> alive) {
  bool warned_exhaustion = false;
  for (;;) {
    error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive || stopping_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      if (is_resource_exhaustion(ec)) {
        // The pending connection stays in the backlog; retry once descriptors may be free again
        // instead of spinning on a listener that stays readable.
        if (!warned_exhaustion) {
          spdlog::warn("http accept: {} ({} connections open); pausing accepts", ec.message(),
                       connections_.size());
          warned_exhaustion = true;
        }
        backoff_timer_.expires_after(kAcceptBackoff);
        co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!*alive) co_return;
      } else if (ec == asio::error::bad_descriptor) {
        spdlog::error("http accept: {}; not accepting any more", ec.message());
        co_return;
      } else {
        spdlog::debug("http accept: {}", ec.message());  // e.g. the client gave up already
      }
      continue;
    }
    if (warned_exhaustion) {
      spdlog::info("http accept: descriptors available again");
      warned_exhaustion = false;
    }
    admit(std::move(socket));
  }
}

void HttpServer::admit(tcp::socket socket) {
  if (connections_.size() >= limits_.max_connections) return refuse(socket);
  auto connection = std::make_shared<HttpConnection>(std::move(socket), *this);
  connections_.emplace(connection.get(), connection);
  connection->start();
}

void HttpServer::refuse(tcp::socket& socket) {
  error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  spdlog::info("req {}: 503 too many connections ({} open) (from {})", next_request_id(),
               connections_.size(), ec ? "(unknown)" : endpoint_text(remote));
  std::ostringstream text;
  text << to_message(
      error_response(503, with_value(messages::kTooManyConnections, limits_.max_connections)), 11,
      false, false);
  const std::string bytes = text.str();
  // A fresh socket's send buffer is empty, so this short response goes out whole at once.
  const int fd = socket.native_handle();
  [[maybe_unused]] ssize_t ignored =
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  // Drop what the client has sent already, so that the close sends FIN rather than RST (which
  // could destroy the 503 before the client reads it). Input arriving later still gets an RST.
  std::array<char, 4096> sink;
  for (int reads = 0; reads < 16 && ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) > 0;
       ++reads) {
  }
  socket.close(ec);
}

void HttpServer::remove(HttpConnection* connection) {
  auto found = connections_.find(connection);
  if (found == connections_.end()) return;
  // Keep the object alive until this call's caller (a member of it) has returned.
  asio::post(io_, [keep = std::move(found->second)] {});
  connections_.erase(found);
  finish_shutdown_if_done();
}

void HttpServer::shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(done);
  error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();
  // close_when_idle may close a connection (and remove it from the table) right away.
  std::vector<std::shared_ptr<HttpConnection>> open;
  for (auto& [raw, connection] : connections_) open.push_back(connection);
  for (auto& connection : open) connection->close_when_idle();
  grace_timer_.expires_after(grace);
  grace_timer_.async_wait([this](error_code ec) {
    if (ec) return;
    std::vector<std::shared_ptr<HttpConnection>> remaining;
    for (auto& [raw, connection] : connections_) remaining.push_back(connection);
    if (!remaining.empty()) {
      spdlog::info("http: shutdown grace over; closing {} busy connection(s)", remaining.size());
    }
    for (auto& connection : remaining) connection->close();
  });
  finish_shutdown_if_done();
}

void HttpServer::finish_shutdown_if_done() {
  if (!stopping_ || !connections_.empty() || !on_stopped_) return;
  grace_timer_.cancel();
  asio::post(io_, std::move(on_stopped_));
  on_stopped_ = nullptr;
}

}  // namespace photon::net
