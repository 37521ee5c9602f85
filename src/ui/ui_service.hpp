// The browser listener's requests: the built-in dashboard page, JSON snapshots (/api/*), the
// daemon protocol over a WebSocket (/ws) and channel messages as Server-Sent Events (/events),
// behind the checks that make a loopback HTTP port safe to open (Host, Origin, token).
#pragma once

#include "channels/event_ids.hpp"
#include "channels/replay_window.hpp"
#include "common/clock.hpp"
#include "common/shared_bytes.hpp"
#include "net/http_server.hpp"
#include "net/peer.hpp"
#include "net/web_streams.hpp"
#include "ui/ui_access.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace photon::ui {

// The dashboard (src/ui/dashboard.html, compiled into the binary).
std::string_view dashboard_page();

// A fresh random token for the UI (64 hex digits, from the kernel's CSPRNG). Throws
// std::system_error if no randomness can be had.
std::string generate_token();

struct UiOptions {
  // What every request but GET / must present: `Authorization: Bearer TOKEN` or `?token=TOKEN`.
  std::string token;
  // Origins allowed besides the listener's own (http://127.0.0.1:PORT, http://localhost:PORT,
  // http://[::1]:PORT), exactly as a browser sends them, e.g. "http://localhost:5173".
  std::vector<std::string> allowed_origins;
  net::WebStreamLimits streams;
  // Channels one /events request may name.
  std::size_t max_event_channels = 64;
  // How long an /api request waits for the dispatcher's answer.
  std::chrono::milliseconds api_timeout{10'000};
  // photon-core's HTTP channel broker at /channels (POST publishes, GET follows channels as
  // Server-Sent Events in photon-core's form): the Bearer token it takes, which grants nothing
  // else; empty: /channels is not served.
  std::string channel_token;
  // `source` of the messages /channels streams when they name none.
  std::string photon_name;
  // The persistent channels (--persist): a stream resumes across a restart on those only.
  std::vector<std::string> persist;
};

// Invariants: every open web stream is in streams_; requests are refused until set_port() has
// told the service the port its Host and Origin checks expect.
// Thread rule: the event loop thread only.
class UiService final : public net::HttpHandler {
 public:
  // `dispatcher` serves the WebSocket and event-stream peers and the /api requests; event streams
  // that reconnect (Last-Event-ID) resume from `replay_window`, the daemon's one window for every
  // transport. Both must outlive the service.
  UiService(boost::asio::io_context& io, net::PeerHandler& dispatcher, const Clock& clock,
            const core::ReplayWindow& replay_window, const core::EventIds& event_ids,
            UiOptions options);
  ~UiService() override;

  void set_port(std::uint16_t port) { policy_.port = port; }
  void handle(net::HttpRequest request, net::HttpRespond respond) override;

  std::size_t open_streams() const { return streams_.count(); }
  std::uint64_t dropped_slow_consumers() const { return streams_.dropped_slow_consumers(); }
  // The clock moved by hand (a test clock): slow streams whose soft-limit time is up are dropped.
  void check_output_deadlines() { streams_.check_output_deadlines(); }
  // Shutdown: closes every WebSocket and event stream (see WebStreams::close_all).
  void close_streams(std::chrono::milliseconds grace, std::function<void()> done) {
    streams_.close_all(grace, std::move(done));
  }

 private:
  class ApiCall;

  // Sends `line` (a request with id kApiRequestId) to the dispatcher and answers with its reply's
  // data, or `error_status` with its error.
  void serve_api(std::string line, unsigned error_status, net::HttpRespond respond);
  // /channels: photon-core's HTTP channel broker. `stream_headers`: the CORS lines of a stream.
  void serve_photon_core(const net::HttpRequest& request, std::vector<std::string> channels,
                         std::string stream_headers, net::HttpRespond respond);
  // The event of a /channels stream for `line` (photon_core_event_of, built once per message).
  std::optional<net::StreamEvent> photon_core_event(std::string_view line);
  // 503 while shutting down or when the streams are at their limit, else nothing.
  std::optional<net::HttpResponse> stream_refusal() const;
  net::HttpResponse open_websocket(const net::HttpRequest& request);
  // `event_of`: the stream's events when not /events' own (photon-core's form, say).
  net::HttpResponse open_event_stream(std::vector<std::string> channels,
                                      std::optional<std::string> last_event_id,
                                      std::string extra_headers,
                                      net::StreamEventOf event_of = nullptr);
  // Sends `peer` the kept messages after the event `last_event_id` on `channels`, oldest first,
  // after an events_gap line when some may be missing.
  void replay(net::Peer& peer, const std::vector<std::string>& channels,
              const std::string& last_event_id) const;

  boost::asio::io_context& io_;
  net::PeerHandler& dispatcher_;
  const Clock& clock_;
  UiOptions options_;
  net::WebStreams streams_;
  std::unordered_set<std::shared_ptr<ApiCall>> calls_;
  const core::ReplayWindow& replay_window_;
  const core::EventIds& event_ids_;
  AccessPolicy policy_;          // its port is 0 until set_port()
  AccessPolicy channel_policy_;  // /channels: its token only
  // The last message a /channels stream was sent, by its number, in photon-core's form.
  struct PhotonCoreText {
    std::string number;
    std::string text;
  };
  PhotonCoreText last_photon_core_;
  std::uint64_t next_stream_request_ = 1;
};

}  // namespace photon::ui
