// The daemon's HTTP/1.1 server (for webhooks and the browser UI), on the daemon's event loop:
// parses requests with Boost.Beast, enforces limits on size, time and connections, and hands each
// complete request to an HttpHandler. It knows nothing of webhooks.
#pragma once

#include "common/defaults.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace photon::net {

// Every limit the server enforces. Whatever a client does, it gets at most this much of the
// daemon; crossing a limit gets a JSON error response (where one can still be sent) and a close.
struct HttpLimits {
  // Request line and headers; beyond: 431 and close.
  std::size_t max_header_bytes = 16 * 1024;
  // Beyond: 413 and close. Sent as soon as Content-Length says so, without reading the body (and
  // instead of 100 Continue); for a chunked body, when the limit is crossed.
  std::size_t max_body_bytes = defaults::kWebhookMaxBody;
  // From the connection's opening (first request) or from the first byte of the next request
  // (kept-alive connection) to the end of the headers; beyond: 408 and close. A slow-loris client
  // that trickles its headers is closed after this.
  std::chrono::milliseconds header_timeout{10'000};
  // From the end of the headers to the end of the body; beyond: 408 and close.
  std::chrono::milliseconds body_timeout{30'000};
  // How long a kept-alive connection may wait for the first byte of its next request; beyond: the
  // connection is closed quietly. Once a byte arrives, header_timeout applies.
  std::chrono::milliseconds keep_alive_timeout{60'000};
  // To write one response (a client that does not read is closed after this). Not in the issue's
  // sketch: without it a client that never reads would hold its connection forever.
  std::chrono::milliseconds write_timeout{30'000};
  // Beyond: the new connection gets 503 (Connection: close) and is closed.
  std::size_t max_connections = 256;
  // The response to the last one carries Connection: close.
  std::size_t max_requests_per_connection = 1000;
};

struct HttpRequest {
  std::uint64_t id = 0;  // unique per server, for logs ("req 42")
  std::string method;    // "POST", "GET", "OPTIONS", ... as sent
  std::string target;    // "/webhook/moveTask?async=1"
  // Names lower-cased, in the order received; lines with the same name are kept together, in
  // their order, at the place of the first (Beast stores them so; RFC 9110 gives meaning only to
  // the order among lines of one name).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    // chunked bodies arrive decoded
  std::string remote;  // "127.0.0.1:53412" ("[::1]:53412" for IPv6)

  // The first value of the header named `lower_name` (which must be lower case), if any.
  std::optional<std::string_view> header(std::string_view lower_name) const;
};

struct HttpResponse {
  unsigned status = 200;  // 200..999; anything else is replaced by a 500
  // Extra headers. Content-Type defaults to application/json; Content-Length, Connection and
  // Transfer-Encoding are the server's (set here, they are dropped). A name that is not an HTTP
  // token or a value with CR, LF or NUL turns the response into a 500.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    // dropped for 204 and 304, and not sent in answer to HEAD
  bool close = false;  // close the connection after this response
  // Set to hand the connection over instead of answering (a WebSocket, an event stream): the
  // server writes nothing, forgets the connection (it no longer counts against max_connections
  // nor waits for it at shutdown) and calls this with the socket and the bytes already read past
  // the request. Status, headers and body are ignored then.
  std::function<void(boost::asio::ip::tcp::socket socket, std::string read_ahead)> take_over;
};

// Answers one request. Thread rule: call it on the event loop thread, exactly once, now (inside
// HttpHandler::handle) or later. A call after the connection died, or a second call, does nothing.
// If every copy is destroyed uncalled, the client gets a 500.
using HttpRespond = std::function<void(HttpResponse)>;

// Implemented by the layer that serves requests (the daemon's webhook service).
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Called on the event loop thread with a complete request. Meanwhile the connection reads
  // nothing more, so pipelined requests are answered in order. An exception thrown here is logged
  // and answered with 500 (unless `respond` was already called).
  virtual void handle(HttpRequest request, HttpRespond respond) = 0;
};

class HttpConnection;

// Invariants: connections_ holds exactly the open connections (a connection whose response is
// written and whose close is pending counts); once stopping_ is set nothing new is accepted and
// on_stopped_ is posted once, when the last connection has closed.
// Lifetime: the io_context and the handler must outlive the server. Destroying the server closes
// every connection at once; their pending responds then do nothing.
// Thread rule: the event loop thread only (construct, listen and start before the loop runs, or
// on it).
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpHandler& handler, HttpLimits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds (SO_REUSEADDR) and listens; port 0 picks a free port (see local_endpoint). Throws
  // boost::system::system_error (e.g. address in use).
  void listen(const boost::asio::ip::address& address, std::uint16_t port);
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Starts accepting; call after listen().
  void start();

  // Stops accepting (new connections are refused by the kernel); idle connections close now;
  // requests in progress get up to `grace` to be answered (their responses carry Connection:
  // close); then everything closes and `done` is posted. A second call does nothing.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done);

  std::size_t open_connections() const { return connections_.size(); }

 private:
  friend class HttpConnection;

  // `alive` turns false when the server is destroyed; the loop must not touch `this` after that.
  boost::asio::awaitable<void> accept_loop(std::shared_ptr<const bool> alive);
  void admit(boost::asio::ip::tcp::socket socket);
  void refuse(boost::asio::ip::tcp::socket& socket);
  void remove(HttpConnection* connection);
  void finish_shutdown_if_done();
  std::uint64_t next_request_id() { return ++last_request_id_; }

  boost::asio::io_context& io_;
  HttpHandler& handler_;
  HttpLimits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer grace_timer_;
  std::unordered_map<HttpConnection*, std::shared_ptr<HttpConnection>> connections_;
  std::function<void()> on_stopped_;
  std::shared_ptr<bool> alive_;
  bool stopping_ = false;
  std::uint64_t last_request_id_ = 0;
};

}  // namespace photon::net
