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
  Session(net::Peer& peer, core::ConnectionId id) : peer_(peer), id_(id) {}
  void deliver(const SharedBytes& line) override { peer_.send(line); }
  net::Peer& peer() { return peer_; }
  core::ConnectionId id() const { return id_; }

 private:
  net::Peer& peer_;
  core::ConnectionId id_;
};

namespace {

constexpr std::array<Field, 0> kNone{};
constexpr std::array kChannelPattern{Field::kChannelPattern};
constexpr std::array kPublishFields{Field::kChannel, Field::kMessage};
constexpr std::array kLockName{Field::kLockName};
constexpr std::array kLockOptional{Field::kLockTimeout, Field::kLockWait,
                                   Field::kReleaseOnDisconnect};
constexpr std::int64_t kDefaultLockTimeoutMs = 30'000;
constexpr std::size_t kStatusChannelsListed = 1000;

// The holder of a lock request: its session, else its id (as the spec's daemon does).
std::string_view holder_of(const Request& request) {
  std::string_view session = request.string_field("sessionId");
  return session.empty() ? request.id : session;
}

boost::json::object lock_json(const core::LockView& lock) {
  return {{"name", lock.name},
          {"holder", lock.holder},
          {"acquiredAt", epoch_millis(lock.acquired_at)},
          {"expiresAt", epoch_millis(lock.expires_at)},
          {"token", lock.token},
          {"waiters", lock.waiters}};
}

std::string held_by(std::string_view name, std::string_view holder) {
  return "lock \"" + std::string(name) + "\" is held by " + std::string(holder);
}

// The reply line to a lock request, for every outcome but kQueued.
std::string lock_reply(std::string_view id, std::string_view name, const core::LockResult& result,
                       bool timed_out, std::int64_t waited_ms) {
  using core::LockOutcome;
  switch (result.outcome) {
    case LockOutcome::kAcquired:
    case LockOutcome::kExtended: {
      boost::json::object data{{"acquired", true},
                               {"lockName", name},
                               {"holder", result.lock.holder},
                               {"acquiredAt", epoch_millis(result.lock.acquired_at)},
                               {"expiresAt", epoch_millis(result.lock.expires_at)},
                               {"token", result.lock.token}};
      if (result.outcome == LockOutcome::kExtended) data["extended"] = true;
      return protocol::result_line(id, true, data);
    }
    case LockOutcome::kRefused: {
      std::string reason = held_by(name, result.lock.holder);
      if (timed_out) reason = "timed out after " + std::to_string(waited_ms) + " ms: " + reason;
      return protocol::result_line(id, false,
                                   boost::json::object{{"acquired", false},
                                                       {"lockName", name},
                                                       {"holder", result.lock.holder},
                                                       {"expiresAt", epoch_millis(result.lock.expires_at)},
                                                       {"reason", reason}});
    }
    case LockOutcome::kQueued:
    case LockOutcome::kFailed:
      break;
  }
  return protocol::error_line(id, result.error);
}

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
      {RequestType::kLock, &Dispatcher::handle_lock, kLockName, kLockOptional},
      {RequestType::kUnlock, &Dispatcher::handle_unlock, kLockName, kNone},
      {RequestType::kListLocks, &Dispatcher::handle_list_locks, kNone, kNone},
      {RequestType::kSchedule, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kUnschedule, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kListJobs, &Dispatcher::handle_not_supported, kNone, kNone},
      {RequestType::kQueryLock, &Dispatcher::handle_query_lock, kLockName, kNone},
  }};
  static_assert(kRoutes.size() == protocol::kRequestTypeCount);
  return kRoutes[static_cast<std::size_t>(type)];
}

Dispatcher::Dispatcher(DispatcherOptions options, const Clock& clock, DaemonControl& control,
                       core::TokenAllocator& tokens)
    : options_(std::move(options)),
      clock_(clock),
      control_(control),
      parser_(options_.max_json_depth),
      channels_(options_.max_total_subscriptions),
      locks_(clock, tokens, options_.lock_limits),
      started_steady_(clock.steady()),
      started_system_(clock.system()) {
  for (std::size_t i = 0; i < protocol::kRequestTypeCount; ++i) {
    if (static_cast<std::size_t>(route_for(static_cast<RequestType>(i)).type) != i) {
      throw std::logic_error("dispatch table is out of order");
    }
  }
}

void Dispatcher::on_open(net::Peer& peer) {
  peer.set_context(std::make_unique<Session>(peer, next_connection_id_++));
  ++open_sessions_;
}

void Dispatcher::on_close(net::Peer& peer) {
  auto* session = static_cast<Session*>(peer.context());
  if (session == nullptr) return;
  channels_.unsubscribe_all(*session);
  locks_.drop_connection(session->id());
  reschedule_locks();
  peer.set_context(nullptr);
  --open_sessions_;
}

void Dispatcher::on_timer() {
  locks_.expire_due();
  reschedule_locks();
}

void Dispatcher::reschedule_locks() { control_.wake_at(locks_.next_deadline()); }

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
  // The list is capped so a daemon with a million channels still answers in one bounded line.
  const std::vector<core::ChannelCount> counts = channels_.channel_counts();
  boost::json::array channels;
  for (std::size_t i = 0; i < counts.size() && i < kStatusChannelsListed; ++i) {
    channels.push_back(boost::json::object{{"channel", counts[i].channel},
                                           {"subscribers", counts[i].subscribers}});
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
      {"locks", locks_.size()},
      {"channels", std::move(channels)},
      {"channelCount", counts.size()},
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
  const Outcome outcome = channels_.subscribe(session, channel, options_.max_subscriptions);
  if (outcome == Outcome::kLimitReached || outcome == Outcome::kTotalLimitReached) {
    const bool own = outcome == Outcome::kLimitReached;
    session.peer().send(protocol::error_line(
        request.id,
        protocol::fill_message(own ? protocol::messages::kTooManySubscriptions
                                   : protocol::messages::kTooManySubscriptionsInDaemon,
                               std::to_string(own ? options_.max_subscriptions
                                                  : options_.max_total_subscriptions))));
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

void Dispatcher::handle_lock(Session& session, const Request& request) {
  const std::string_view name = request.string_field("lockName");
  core::LockRequest lock_request{
      .name = name,
      .holder = holder_of(request),
      .lease = std::chrono::milliseconds(request.integer_field("lockTimeout", kDefaultLockTimeoutMs)),
      .wait = std::chrono::milliseconds(request.integer_field("lockWait", 0)),
      .release_on_disconnect = request.bool_field("releaseOnDisconnect", false),
      .connection = session.id(),
  };
  // A queued request is answered later, by the call that grants it or ends its wait; the
  // session outlives the waiter (drop_connection removes waiters before a session goes).
  auto answer_later = [&session, id = std::string(request.id), lock_name = std::string(name),
                       waited_ms = lock_request.wait.count()](const core::LockResult& result) {
    session.peer().send(lock_reply(id, lock_name, result, true, waited_ms));
  };
  const core::LockResult result = locks_.acquire(lock_request, answer_later);
  if (result.outcome != core::LockOutcome::kQueued) {
    session.peer().send(lock_reply(request.id, name, result, false, 0));
  }
  reschedule_locks();
}

void Dispatcher::handle_unlock(Session& session, const Request& request) {
  const std::string_view name = request.string_field("lockName");
  const core::ReleaseResult result = locks_.release(name, holder_of(request));
  if (result.outcome == core::ReleaseOutcome::kHeldByOther) {
    session.peer().send(protocol::result_line(
        request.id, false,
        boost::json::object{
            {"released", false}, {"lockName", name}, {"reason", held_by(name, result.holder)}}));
  } else {
    session.peer().send(protocol::result_line(
        request.id, true, boost::json::object{{"released", true}, {"lockName", name}}));
  }
  reschedule_locks();
}

void Dispatcher::handle_list_locks(Session& session, const Request& request) {
  boost::json::array locks;
  for (const core::LockView& lock : locks_.list()) locks.push_back(lock_json(lock));
  session.peer().send(
      protocol::result_line(request.id, true, boost::json::object{{"locks", std::move(locks)}}));
  reschedule_locks();
}

void Dispatcher::handle_query_lock(Session& session, const Request& request) {
  std::optional<core::LockView> lock = locks_.query(request.string_field("lockName"));
  boost::json::value found = lock ? boost::json::value(lock_json(*lock)) : boost::json::value(nullptr);
  session.peer().send(
      protocol::result_line(request.id, true, boost::json::object{{"lock", std::move(found)}}));
  reschedule_locks();
}

void Dispatcher::handle_not_supported(Session& session, const Request& request) {
  session.peer().send(protocol::error_line(
      request.id, "request type \"" + std::string(protocol::request_type_name(request.type)) +
                      "\" is not supported by this daemon yet"));
}

}  // namespace photon::daemon
