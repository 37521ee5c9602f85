// UiService: routing and the safety checks of the browser listener; /api requests go through the
// dispatcher's own table as an in-process client, so they answer exactly what the socket does.
#include "ui/ui_service.hpp"

#include "common/defaults.hpp"
#include "common/text.hpp"
#include "common/units.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"
#include "ui/stream_events.hpp"

#include <spdlog/spdlog.h>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <system_error>
#include <unordered_set>

namespace photon::ui {
namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace words = protocol::messages::http;

namespace {

constexpr std::string_view kApiRequestId = "api";
constexpr std::size_t kMaxReplyDepth = 4096;

// For the page: scripts and styles are inline (the page is one file), everything it loads comes
// from the daemon itself, and nothing may frame it.
constexpr std::string_view kPagePolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

net::HttpResponse json_response(unsigned status, std::string body) {
  net::HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers = {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}};
  return response;
}

net::HttpResponse error_response(unsigned status, std::string_view message) {
  return json_response(status, json::serialize(json::object{{"error", message}}));
}

}  // namespace

std::string generate_token() {
  std::array<unsigned char, 32> bytes;
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t count = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (count < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    filled += static_cast<std::size_t>(count);
  }
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string token;
  token.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    token.push_back(kHex[byte >> 4]);
    token.push_back(kHex[byte & 0xf]);
  }
  return token;
}

// One /api request: an in-process client of the dispatcher that sends one request and turns its
// reply into the HTTP response. It counts as a connection while it lasts, as a `status` over the
// socket counts the asking connection.
// Lifetime: kept by the service's table until answered, timed out or the service goes away.
class UiService::ApiCall final : public net::Peer, public std::enable_shared_from_this<ApiCall> {
 public:
  ApiCall(UiService& service, net::HttpRespond respond)
      : service_(service), respond_(std::move(respond)), timeout_(service.io_) {}

  void start(const std::string& line, unsigned error_status) {
    error_status_ = error_status;
    service_.calls_.insert(shared_from_this());
    service_.dispatcher_.on_open(*this);
    opened_ = true;
    timeout_.expires_after(service_.options_.api_timeout);
    timeout_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->answered_) return;
      self->answer(error_response(504, words::kNoAnswerInTime));
      self->end();
    });
    in_dispatch_ = true;
    service_.dispatcher_.on_line(*this, line);
    in_dispatch_ = false;
    if (answered_) end();
  }

  void send(SharedBytes line) override { receive(*line); }
  void send(std::string line) override { receive(line); }
  void close_after_flush() override {
    if (!in_dispatch_) end();
  }

  // Tells the dispatcher this client is gone and leaves the service's table.
  void end() {
    if (ended_) return;
    ended_ = true;
    timeout_.cancel();
    if (!answered_) answer(error_response(503, protocol::sentence_of(RefusalCode::kShuttingDown)));
    if (opened_) service_.dispatcher_.on_close(*this);
    // Erasing may destroy this object; the caller may be a member of it, so the last reference
    // goes next turn.
    asio::post(service_.io_, [keep = shared_from_this()] {});
    service_.calls_.erase(shared_from_this());
  }

 private:
  void receive(std::string_view line) {
    if (answered_) return;
    boost::system::error_code ec;
    // The daemon's own replies nest as deep as what clients stored (job arguments, say): Boost's
    // default depth (32) is below the request limit.
    json::parse_options options;
    options.max_depth = kMaxReplyDepth;
    json::value reply = json::parse(line, ec, {}, options);
    if (ec || !reply.is_object()) {
      answer(error_response(500, words::kUnreadableReply));
      if (!in_dispatch_) asio::post(service_.io_, [self = shared_from_this()] { self->end(); });
      return;
    }
    const json::object& object = reply.as_object();
    const json::value* id = object.if_contains("id");
    const json::value* type = object.if_contains("type");
    const bool error = type && type->is_string() && type->get_string() == "error";
    // A request the dispatcher could not read (too deep, say) is answered with an error whose id
    // is kUnknownId: it can only be this call's one request.
    const bool ours = id && id->is_string() &&
                      (id->get_string() == kApiRequestId ||
                       (error && id->get_string() == protocol::messages::kUnknownId));
    if (!ours) return;
    if (error) {
      const json::value* error = object.if_contains("error");
      answer(error_response(error_status_, error && error->is_string()
                                               ? std::string_view(error->get_string())
                                               : "error"));
    } else if (const json::value* data = object.if_contains("data")) {
      answer(json_response(200, json::serialize(*data)));
    } else {
      answer(json_response(500, json::serialize(reply)));
    }
    if (!in_dispatch_) asio::post(service_.io_, [self = shared_from_this()] { self->end(); });
  }

  void answer(net::HttpResponse response) {
    answered_ = true;
    if (respond_) std::exchange(respond_, nullptr)(std::move(response));
  }

  UiService& service_;
  net::HttpRespond respond_;
  asio::steady_timer timeout_;
  unsigned error_status_ = 500;
  bool opened_ = false;
  bool answered_ = false;
  bool ended_ = false;
  bool in_dispatch_ = false;
};

UiService::UiService(asio::io_context& io, net::PeerHandler& dispatcher, const Clock& clock,
                     const core::ReplayWindow& replay_window, const core::EventIds& event_ids,
                     UiOptions options)
    : io_(io),
      dispatcher_(dispatcher),
      clock_(clock),
      options_(std::move(options)),
      streams_(io, dispatcher, clock, options_.streams, web_stream_protocol()),
      replay_window_(replay_window),
      event_ids_(event_ids) {
  policy_.token = options_.token;
  channel_policy_.token = options_.channel_token;
  for (const std::string& origin : options_.allowed_origins) {
    policy_.allowed_origins.push_back(ascii_lower(origin));
  }
}

UiService::~UiService() {
  auto calls = std::move(calls_);
  calls_.clear();
  for (const auto& call : calls) call->end();
}

void UiService::handle(net::HttpRequest request, net::HttpRespond respond) {
  if (policy_.port == 0) return respond(error_response(503, words::kListenerStarting));
  if (auto refusal =
          check_host_and_origin(policy_, request.header("host"), request.header("origin"))) {
    spdlog::info("ui req {}: {} {} refused: {} (from {})", request.id, request.method,
                 request.target, refusal->message, request.remote);
    return respond(error_response(refusal->status, refusal->message));
  }
  // A page of an origin given with --ui-allow-origin may read what it asks for (CORS); the
  // listener's own page needs no such headers.
  const std::optional<std::string> cors = cors_origin(policy_, request.header("origin"));
  if (cors) {
    respond = [respond = std::move(respond), origin = *cors](net::HttpResponse response) {
      response.headers.emplace_back("Access-Control-Allow-Origin", origin);
      response.headers.emplace_back("Vary", "Origin");
      respond(std::move(response));
    };
  }
  std::optional<UiTarget> target = parse_target(request.target);
  const bool photon_core = target && target->path == "/channels" && !options_.channel_token.empty();
  if (request.method == "OPTIONS" && cors) {
    // The preflight of a fetch with an Authorization header; it carries no token itself.
    net::HttpResponse response;
    response.status = 204;
    response.headers = {
        {"Access-Control-Allow-Methods", photon_core ? "GET, HEAD, POST" : "GET, HEAD"},
        {"Access-Control-Allow-Headers",
         photon_core ? "Authorization, Content-Type" : "Authorization, Last-Event-ID"},
        {"Access-Control-Max-Age", "600"}};
    return respond(std::move(response));
  }
  // An event stream's answer is written by the stream, not through `respond`: it takes the CORS
  // headers along.
  std::string stream_headers;
  if (cors) stream_headers = "Access-Control-Allow-Origin: " + *cors + "\r\nVary: Origin\r\n";
  if (photon_core) {
    return serve_photon_core(request, std::move(target->channels), std::move(stream_headers),
                             std::move(respond));
  }
  if (request.method != "GET" && request.method != "HEAD") {
    auto response = error_response(405, words::kOnlyGet);
    response.headers.emplace_back("Allow", "GET, HEAD");
    return respond(std::move(response));
  }
  if (!target) return respond(error_response(400, words::kMalformedTarget));

  if (target->path == "/") {
    net::HttpResponse response;
    response.body = std::string(dashboard_page());
    response.headers = {{"Content-Type", "text/html; charset=utf-8"},
                        {"Cache-Control", "no-store"},
                        {"Content-Security-Policy", std::string(kPagePolicy)},
                        {"X-Frame-Options", "DENY"},
                        {"X-Content-Type-Options", "nosniff"},
                        {"Referrer-Policy", "no-referrer"}};
    return respond(std::move(response));
  }
  static const std::array<std::pair<std::string_view, std::string_view>, 4> kApi = {{
      {"/api/status", "status"},
      {"/api/locks", "list_locks"},
      {"/api/jobs", "list_jobs"},
      {"/api/methods", "list_methods"},
  }};
  const auto api = std::find_if(kApi.begin(), kApi.end(),
                                [&](const auto& entry) { return entry.first == target->path; });
  const bool known = api != kApi.end() || target->path == "/ws" || target->path == "/events";
  if (!known)
    return respond(error_response(404, protocol::fill_message(words::kNoSuchPage, target->path)));
  if (!token_matches(policy_, target->token, request.header("authorization"))) {
    spdlog::info("ui req {}: {} {}: 401 missing or wrong token (from {})", request.id,
                 request.method, target->path, request.remote);
    auto response = error_response(401, words::kTokenRequired);
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return respond(std::move(response));
  }
  if (api != kApi.end()) {
    return serve_api(json::serialize(json::object{{"type", api->second}, {"id", kApiRequestId}}),
                     500, std::move(respond));
  }
  if (target->path == "/ws") return respond(open_websocket(request));
  // A browser's EventSource sends Last-Event-ID when it reconnects; `lastEventId` is for clients
  // that cannot set headers.
  std::optional<std::string> last_event_id;
  if (!target->last_event_id.empty()) last_event_id = target->last_event_id;
  if (auto header = request.header("last-event-id")) last_event_id = std::string(*header);
  if (last_event_id && last_event_id->size() > protocol::kMaxLastEventIdBytes) {
    return respond(error_response(400, words::kBadLastEventId));
  }
  respond(open_event_stream(std::move(target->channels), last_event_id, std::move(stream_headers)));
}

void UiService::serve_api(std::string line, unsigned error_status, net::HttpRespond respond) {
  std::make_shared<ApiCall>(*this, std::move(respond))->start(line, error_status);
}

void UiService::serve_photon_core(const net::HttpRequest& request,
                                  std::vector<std::string> channels, std::string stream_headers,
                                  net::HttpRespond respond) {
  // Bearer only: photon-core sends its token in the header, and a token in a URL ends up in logs.
  if (!token_matches(channel_policy_, {}, request.header("authorization"))) {
    spdlog::info("ui req {}: {} /channels: 401 missing or wrong channel token (from {})",
                 request.id, request.method, request.remote);
    auto response = error_response(401, words::kChannelTokenRequired);
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return respond(std::move(response));
  }
  if (request.method == "POST") {
    // photon-core's message, {"channel","event","data","timestamp","source"}: published as it is
    // on its channel, through the dispatcher's publish (its checks and limits, the broker).
    boost::system::error_code ec;
    json::parse_options options;
    // Deeper than any request may be (--max-json-depth is at most 10000): the dispatcher refuses
    // what is too deep, with its own error.
    options.max_depth = defaults::kMaxJsonDepthLimit + 1;
    json::value body = json::parse(request.body, ec, {}, options);
    const json::value* channel =
        ec || !body.is_object() ? nullptr : body.get_object().if_contains("channel");
    if (channel == nullptr || !channel->is_string()) {
      return respond(error_response(400, words::kBadChannelMessage));
    }
    json::object publish{{"type", "publish"}, {"id", kApiRequestId}, {"channel", *channel}};
    publish["message"] = std::move(body);
    return serve_api(json::serialize(publish), 400, std::move(respond));
  }
  if (request.method != "GET" && request.method != "HEAD") {
    auto response = error_response(405, words::kOnlyGetOrPost);
    response.headers.emplace_back("Allow", "GET, HEAD, POST");
    return respond(std::move(response));
  }
  respond(open_event_stream(std::move(channels), std::nullopt, std::move(stream_headers),
                            [this](std::string_view line) { return photon_core_event(line); }));
}

std::optional<net::StreamEvent> UiService::photon_core_event(std::string_view line) {
  // A publish reaches every stream in one turn, one after another: the first builds the text (and
  // its timestamp), the others take it.
  const std::string_view number = channel_message_number(line);
  if (!number.empty() && number == last_photon_core_.number) {
    return net::StreamEvent{.data = last_photon_core_.text};
  }
  const core::PhotonCoreSender sender{.source = options_.photon_name,
                                      .now_millis = epoch_millis(clock_.system())};
  std::optional<net::StreamEvent> event = photon_core_event_of(line, sender);
  if (event && !number.empty()) last_photon_core_ = {std::string(number), event->data};
  return event;
}

std::optional<net::HttpResponse> UiService::stream_refusal() const {
  if (streams_.closing())
    return error_response(503, protocol::sentence_of(RefusalCode::kShuttingDown));
  if (streams_.full()) return error_response(503, words::kTooManyStreams);
  return std::nullopt;
}

net::HttpResponse UiService::open_websocket(const net::HttpRequest& request) {
  http::request<http::string_body> upgrade;
  upgrade.method_string(request.method);
  upgrade.target(request.target);
  upgrade.version(11);
  for (const auto& [name, value] : request.headers) upgrade.insert(name, value);
  if (!boost::beast::websocket::is_upgrade(upgrade)) {
    auto response = error_response(426, words::kNotAWebSocket);
    response.headers.emplace_back("Upgrade", "websocket");
    return response;
  }
  if (auto refusal = stream_refusal()) return *refusal;
  net::HttpResponse response;
  response.take_over = [this, upgrade = std::move(upgrade)](asio::ip::tcp::socket socket,
                                                            std::string read_ahead) mutable {
    if (!read_ahead.empty()) {
      // A client may not send frames before the handshake's answer.
      spdlog::debug("websocket: {} bytes sent before the handshake; closing", read_ahead.size());
      return;
    }
    streams_.open_websocket(std::move(socket), std::move(upgrade));
  };
  return response;
}

void UiService::replay(net::Peer& peer, const std::vector<std::string>& channels,
                       const std::string& last_event_id) const {
  // Another run's id (the daemon restarted), another daemon's, or none at all: nothing kept can be
  // placed after it, so the stream learns of its gap and goes on live.
  const std::optional<std::uint64_t> sequence = event_ids_.sequence_of(last_event_id);
  // An earlier run's id vouches only for persistent channels: that run's other messages are gone.
  const bool vouched =
      sequence && (*sequence > event_ids_.carried_up_to() ||
                   std::all_of(channels.begin(), channels.end(), [&](const std::string& channel) {
                     return core::patterns_cover(options_.persist, channel);
                   }));
  core::ReplayedMessages owed{.gap = true};
  if (vouched) {
    owed = replay_window_.since(
        *sequence,
        [&](std::string_view channel) {
          return std::any_of(channels.begin(), channels.end(), [&](std::string_view subscription) {
            return core::subscription_matches(subscription, channel);
          });
        },
        clock_.steady());
  }
  // Queued at once, a replay over half the output bound would get the stream cut as a slow
  // consumer, and every reconnection again: it is told of the gap instead.
  if (core::replay_bytes(owed) > options_.streams.output.hard_bytes / 2) owed = {.gap = true};
  if (owed.gap) {
    const core::ReplayLimits& limits = replay_window_.limits();
    peer.send(json::serialize(json::object{
                  {"type", "events_gap"},
                  {"lastEventId", last_event_id},
                  {"message", protocol::fill_message(
                                  words::kEventsMissed,
                                  {last_event_id, std::to_string(limits.channel_messages),
                                   limits.age.count() == 0
                                       ? std::string()
                                       : protocol::fill_message(words::kEventsMissedAge,
                                                                format_duration(limits.age))})}}) +
              "\n");
  }
  for (const SharedBytes& line : owed.lines) peer.send(line);
}

net::HttpResponse UiService::open_event_stream(std::vector<std::string> channels,
                                               std::optional<std::string> last_event_id,
                                               std::string extra_headers,
                                               net::StreamEventOf event_of) {
  if (channels.empty()) {
    return error_response(400, words::kNoChannels);
  }
  if (channels.size() > options_.max_event_channels) {
    return error_response(400, protocol::fill_message(words::kTooManyChannels,
                                                      std::to_string(options_.max_event_channels)));
  }
  // The same channel twice is one subscription (a second subscribe would be refused).
  std::sort(channels.begin(), channels.end());
  channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
  for (const std::string& channel : channels) {
    if (auto problem = protocol::channel_name_error(channel, true)) {
      return error_response(400, protocol::fill_message(words::kBadChannel, {channel, *problem}));
    }
  }
  if (auto refusal = stream_refusal()) return *refusal;
  net::HttpResponse response;
  const std::uint64_t stream_number = next_stream_request_++;
  response.take_over = [this, channels = std::move(channels), stream_number, last_event_id,
                        extra_headers = std::move(extra_headers), event_of = std::move(event_of)](
                           asio::ip::tcp::socket socket, std::string) mutable {
    streams_.open_event_stream(
        std::move(socket), std::move(extra_headers),
        [&](net::Peer& peer) {
          // Kept messages first, then (subscribed in the same turn, so nothing falls between) the
          // live ones: no gap, no repeat.
          if (last_event_id) replay(peer, channels, *last_event_id);
          std::size_t index = 0;
          for (const std::string& channel : channels) {
            const std::string line = json::serialize(json::object{
                {"type", "subscribe"},
                {"id", "events-" + std::to_string(stream_number) + "-" + std::to_string(index++)},
                {"channel", channel}});
            dispatcher_.on_line(peer, line);
          }
        },
        std::move(event_of));
  };
  return response;
}

}  // namespace photon::ui
