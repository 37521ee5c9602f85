// Request dispatch: the table, and the handlers of the requests this daemon serves. Handlers
// stay thin: they read validated fields, ask a service, and queue one reply.
#include "daemon/dispatcher.hpp"

#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

#include <unistd.h>

#include <array>

namespace photon::daemon {

using protocol::Field;
using protocol::Request;
using protocol::RequestType;

// A client connection's state: its peer, and its identity as a channel subscriber.
class Dispatcher::Session final : public net::PeerContext, public core::Subscriber {
 public:
  explicit Session(net::Peer& peer) : peer_(peer) {}
  void deliver(const SharedBytes& line) override { peer_.send(line); }
  net::Peer& peer() { return peer_; }

 private:
  net::Peer& peer_;
};

namespace {

constexpr std::array<Field, 0> kNone{};
constexpr std::array kChannelPattern{Field::kChannelPattern};
constexpr std::array kPublishFields{Field::kChannel, Field::kMessage};

}  // namespace

const Dispatcher::Route& Dispatcher::route_for(RequestType type) {
  // Indexed by RequestType; the static_assert below keeps the two in step.
  static const std::array<Route, protocol::kRequestTypeCount> kRoutes = {{
      {RequestType::kPing, &Dispatcher::handle_ping, kNone, kNone},
      {RequestType::kShutdown, &Dispatcher::handle_shutdown, kNone, kNone},
      {RequestType::kStatus, &Dispatcher::handle_status, kNone, kNone},
      {RequestType::kSubscribe, &Dispatcher::handle_subscribe, kChannelPattern, kNone},
      {RequestType::kUnsubscribe, &Dispatcher::handle_unsubscribe, kChannelPattern,
       kNone},
      {RequestType::kPublish, &Dispatcher::handle_publish, kPublishFields, kNone},
      {RequestType::kCommand, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kPromptResponse, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kLock, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kUnlock, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kListLocks, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kSchedule, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kUnschedule, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kListJobs, &Dispatcher::handle_not_supported, kNone, kNone},
  }};
  static_assert(kRoutes.size() == protocol::kRequestTypeCount);
  return kRoutes[static_cast<std::size_t>(type)];
}

Dispatcher::Dispatcher(DispatcherOptions options, const Clock& clock, DaemonControl& control)
    : options_(std::move(options)),
      clock_(clock),
      control_(control),
      parser_(options_.max_json_depth),
      started_steady_(clock.steady()),
      started_system_(clock.system()) {
  for (std::size_t i = 0; i < protocol::kRequestTypeCount; ++i) {
    if (static_cast<std::size_t>(route_for(static_cast<RequestType>(i)).type) != i) {
      throw std::logic_error("dispatch table is out of order");
    }
  }
}

void Dispatcher::on_open(net::Peer& peer) {
  peer.set_context(std::make_unique<Session>(peer));
  ++open_sessions_;
}

void Dispatcher::on_close(net::Peer& peer) {
  auto* session = static_cast<Session*>(peer.context());
  if (session == nullptr) return;
  channels_.unsubscribe_all(*session);
  peer.set_context(nullptr);
  --open_sessions_;
}

void Dispatcher::on_line(net::Peer& peer, std::string_view line) {
  auto* session = static_cast<Session*>(peer.context());
  protocol::ParseResult parsed = parser_.parse(line);
  if (auto* error = std::get_if<protocol::RequestError>(&parsed)) {
    peer.send(protocol::error_line(error->id, error->message));
    return;
  }
  const Request& request = std::get<Request>(parsed);
  const Route& route = route_for(request.type);
  if (auto error = protocol::validate_fields(request, route.required, route.optional)) {
    peer.send(protocol::error_line(request.id, *error));
    return;
  }
  (this->*route.handler)(*session, request);
}

void Dispatcher::handle_ping(Session& session, const Request& request) {
  session.peer().send(protocol::pong_line(request.id));
}

void Dispatcher::handle_shutdown(Session& session, const Request& request) {
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"message", protocol::messages::kShuttingDown}}));
  control_.request_shutdown();
}

void Dispatcher::handle_status(Session& session, const Request& request) {
  boost::json::array channels;
  for (const core::ChannelCount& count : channels_.channel_counts()) {
    channels.push_back(boost::json::object{{"channel", count.channel},
                                           {"subscribers", count.subscribers}});
  }
  const TransportCounters transport = control_.transport_counters();
  const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
      clock_.steady() - started_steady_);
  boost::json::object data{
      {"name", options_.photon_name},
      {"pid", static_cast<std::int64_t>(::getpid())},
      {"version", PHOTON_VERSION},
      {"startedAt", epoch_millis(started_system_)},
      {"uptimeMs", uptime.count()},
      {"connections", open_sessions_},
      {"channels", std::move(channels)},
      {"counters",
       boost::json::object{{"published", channels_.published()},
                           {"delivered", channels_.delivered()},
                           {"droppedSlowConsumers", transport.dropped_slow_consumers},
                           {"connectionsRefused", transport.connections_refused}}},
  };
  session.peer().send(protocol::result_line(request.id, true, data));
}

void Dispatcher::handle_subscribe(Session& session, const Request& request) {
  std::string_view channel = request.string_field("channel");
  using Outcome = core::ChannelRegistry::SubscribeOutcome;
  if (channels_.subscribe(session, channel, options_.max_subscriptions) == Outcome::kLimitReached) {
    session.peer().send(protocol::error_line(
        request.id, protocol::fill_message(protocol::messages::kTooManySubscriptions,
                                           std::to_string(options_.max_subscriptions))));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"subscribed", true}, {"channel", channel}}));
}

void Dispatcher::handle_unsubscribe(Session& session, const Request& request) {
  std::string_view channel = request.string_field("channel");
  channels_.unsubscribe(session, channel);
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"unsubscribed", true}, {"channel", channel}}));
}

void Dispatcher::handle_publish(Session& session, const Request& request) {
  std::string_view channel = request.string_field("channel");
  const boost::json::value& message = *request.find("message");
  const std::size_t delivered = channels_.publish(channel, &session, [&] {
    return make_shared_bytes(
        protocol::channel_message_line(next_message_sequence_++, channel, message));
  });
  session.peer().send(protocol::published_line(request.id, channel, delivered));
}

void Dispatcher::handle_not_supported(Session& session, const Request& request) {
  session.peer().send(protocol::error_line(
      request.id, "request type \"" + std::string(protocol::request_type_name(request.type)) +
                      "\" is not supported by this daemon yet"));
}

}  // namespace photon::daemon
