// Browser connections that stay open after their HTTP request: a WebSocket carrying the daemon's
// protocol (one message per text frame) and a Server-Sent Events stream of the events the layer
// above picks out of its lines. Both are Peers, so the dispatcher serves them exactly as it serves
// Unix-socket connections.
#pragma once

#include "common/clock.hpp"
#include "net/output_queue.hpp"
#include "net/peer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace photon::net {

struct WebStreamLimits {
  // A WebSocket message (one request) longer than this closes the WebSocket with code 1009, as a
  // line over the limit closes a Unix-socket connection.
  std::size_t max_message_bytes = 1u << 20;
  // The same slow-consumer bounds as the Unix socket's connections.
  OutputLimits output;
  // Reading a WebSocket pauses while this much output is queued to it.
  std::size_t pause_reading_bytes = 1u << 20;
  // An event stream writes a comment this often, so that proxies and browsers keep it open and a
  // vanished client is noticed; a WebSocket is pinged after this long without traffic.
  std::chrono::milliseconds keepalive{15'000};
  // Open streams (WebSockets and event streams together); the owner refuses more.
  std::size_t max_streams = 256;
};

// What an event stream makes of one line its handler sends it: the event the client gets.
struct StreamEvent {
  std::string_view name;  // the `event:` field; empty: none (the browser's "message")
  std::string_view id;    // the `id:` field; empty: none
  bool last = false;      // the stream ends once this event is written
  std::string data;       // the `data:` field (one line) when not the line itself; empty: the line
};

// The event for one line (without its newline) the handler sends an event stream, whose `data:`
// is the line unless the event says otherwise; nothing: the line is not for the client (a reply
// to a subscribe, say).
using StreamEventOf = std::function<std::optional<StreamEvent>(std::string_view line)>;

// What the streams carry, known by the layer that speaks it (the UI service), so that this
// transport knows nothing of the daemon's protocol.
struct WebStreamProtocol {
  StreamEventOf event_of;
};

class WebStream;

// The open web streams: created here, handed to the PeerHandler, closed together at shutdown.
// Invariants: streams_ holds exactly the open streams.
// Thread rule: the event loop thread only.
class WebStreams {
 public:
  WebStreams(boost::asio::io_context& io, PeerHandler& handler, const Clock& clock,
             WebStreamLimits limits, WebStreamProtocol protocol);
  ~WebStreams();
  WebStreams(const WebStreams&) = delete;
  WebStreams& operator=(const WebStreams&) = delete;

  // Completes the WebSocket handshake answering `upgrade` (a GET with `Upgrade: websocket`); the
  // handler then gets each text message as a line and the peer's replies go out as text frames.
  void open_websocket(boost::asio::ip::tcp::socket socket,
                      boost::beast::http::request<boost::beast::http::string_body> upgrade);

  // Writes a `text/event-stream` response header and hands the peer to the handler; then
  // `subscribe` is called with it (the caller sends it the subscribe requests it stands for). Each
  // line the handler sends it becomes the event the protocol's event_of makes of it, or nothing.
  // `extra_headers`: complete header lines ("Name: value\r\n") added to the response's (CORS).
  // `event_of`, when given, makes this stream's events instead of the protocol's.
  void open_event_stream(boost::asio::ip::tcp::socket socket, std::string extra_headers,
                         const std::function<void(Peer&)>& subscribe,
                         StreamEventOf event_of = nullptr);

  // The clock moved by hand (a test clock): drops the slow streams whose soft-limit time is up.
  void check_output_deadlines();

  std::size_t count() const { return streams_.size(); }
  bool full() const { return streams_.size() >= limits_.max_streams; }
  bool closing() const { return closing_all_; }
  std::uint64_t dropped_slow_consumers() const { return dropped_slow_consumers_; }

  // Shutdown: WebSockets get a close frame (1001 going away), event streams end; whatever has not
  // closed after `grace` is closed then, and `done` is posted once every stream is gone.
  void close_all(std::chrono::milliseconds grace, std::function<void()> done);

 private:
  friend class WebStream;
  friend class WebSocketStream;
  friend class EventStream;

  void add(std::shared_ptr<WebStream> stream);
  void remove(WebStream* stream);
  void finish_close_if_done();

  boost::asio::io_context& io_;
  PeerHandler& handler_;
  const Clock& clock_;
  WebStreamLimits limits_;
  WebStreamProtocol protocol_;
  std::unordered_map<WebStream*, std::shared_ptr<WebStream>> streams_;
  std::uint64_t dropped_slow_consumers_ = 0;
  std::unique_ptr<boost::asio::steady_timer> grace_timer_;
  std::function<void()> on_closed_;
  bool closing_all_ = false;
};

}  // namespace photon::net
