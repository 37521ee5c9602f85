// Request dispatch: the table, and the handlers of the requests this daemon serves. Handlers
// stay thin: they read validated fields, ask a service, and queue one reply.
#include "daemon/dispatcher.hpp"

#include "common/defaults.hpp"
#include "daemon/lock_replies.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

#include <unistd.h>

#include <array>
#include <iterator>
#include <vector>

namespace photon::daemon {

using protocol::Field;
using protocol::Request;

// A client connection's state: its peer and its identity as a channel subscriber and to the
// services (its connection id).
class Dispatcher::Session final : public net::PeerContext, public core::Subscriber {
 public:
  Session(net::Peer& peer, core::ConnectionId id) : peer_(peer), id_(id) {}
  void deliver(const SharedBytes& line) override { peer_.send(line); }
  net::Peer& peer() { return peer_; }
  core::ConnectionId id() const { return id_; }
  // Whether this connection has moved a test clock (it does not keep the daemon from idling).
  bool clock_controller() const { return clock_controller_; }
  void set_clock_controller() { clock_controller_ = true; }

 private:
  net::Peer& peer_;
  core::ConnectionId id_;
  bool clock_controller_ = false;
};

namespace {

constexpr std::array<Field, 0> kNone{};
constexpr std::array kChannelPattern{Field::kChannelPattern};
constexpr std::array kPublishFields{Field::kChannel, Field::kMessage};
constexpr std::array kLockName{Field::kLockName};
constexpr std::array kLockOptional{Field::kLockTimeout, Field::kLockWait,
                                   Field::kReleaseOnDisconnect, Field::kRenewToken};
constexpr std::array kCommandRequired{Field::kMethod};
constexpr std::array kCommandOptional{Field::kArgs, Field::kClientType};
constexpr std::array kPromptResponseRequired{Field::kPromptValue};
constexpr std::array kScheduleRequired{Field::kJobId, Field::kMethod, Field::kCron};
constexpr std::array kScheduleOptional{Field::kArgs, Field::kTimezone, Field::kCatchUp,
                                       Field::kOverlap};
constexpr std::array kJobId{Field::kJobId};
constexpr std::array kLimitOptional{Field::kLimit};
constexpr std::array kSubscribeOptional{Field::kLastEventId};
constexpr std::array kEventsSinceOptional{Field::kLastEventId, Field::kLimit};
constexpr std::int64_t kDefaultEventsLimit = 1000;
constexpr std::int64_t kDefaultHistoryLimit = 20;
constexpr std::int64_t kDefaultLockTimeoutMs = 30'000;
constexpr std::string_view kDefaultSession = "default";
constexpr std::size_t kStatusChannelsListed = 1000;

// The holder of a lock request: its session, else its id (as the spec's daemon does).
std::string_view holder_of(const Request& request) {
  std::string_view session = request.string_field("sessionId");
  return session.empty() ? request.id : session;
}

// What the caller of a command that was not started reads: the catalogue's sentence.
std::string call_refusal_message(const CallRefused& refused, std::string_view photon,
                                 std::string_view method, std::string_view id,
                                 const core::MethodHost* methods) {
  switch (refused.code) {
    case CallRefusal::kNoMethods:
      return protocol::describe({RefusalCode::kNoMethods, {std::string(photon)}});
    case CallRefusal::kUnknownMethod:
      return protocol::describe(core::unknown_method(method, methods->methods()));
    case CallRefusal::kDuplicateId:
      return protocol::describe({RefusalCode::kCommandIdInUse, {std::string(id)}});
    case CallRefusal::kTooManyOnConnection:
      return protocol::describe(
          {RefusalCode::kTooManyCommandsOnConnection, {std::to_string(refused.limit)}});
    case CallRefusal::kTooManyInDaemon:
      return protocol::describe(
          {RefusalCode::kTooManyCommandsInDaemon, {std::to_string(refused.limit)}});
    case CallRefusal::kBadArgs:
      break;
  }
  return refused.detail;
}

}  // namespace

// The table of request types: one row per type, with its wire name, the fields it requires and
// may carry, and its handler. Types whose subsystem a daemon does not host are still here, so the
// client hears why rather than "unknown".
const Dispatcher::Route Dispatcher::kRoutes[] = {
    {"ping", &Dispatcher::handle_ping, kNone, kNone},
    {"shutdown", &Dispatcher::handle_shutdown, kNone, kNone},
    {"status", &Dispatcher::handle_status, kNone, kNone},
    {"subscribe", &Dispatcher::handle_subscribe, kChannelPattern, kSubscribeOptional},
    {"unsubscribe", &Dispatcher::handle_unsubscribe, kChannelPattern, kNone},
    {"publish", &Dispatcher::handle_publish, kPublishFields, kNone},
    {"command", &Dispatcher::handle_command, kCommandRequired, kCommandOptional},
    {"prompt_response", &Dispatcher::handle_prompt_response, kPromptResponseRequired, kNone},
    {"lock", &Dispatcher::handle_lock, kLockName, kLockOptional},
    {"unlock", &Dispatcher::handle_unlock, kLockName, kNone},
    {"list_locks", &Dispatcher::handle_list_locks, kNone, kNone},
    {"schedule", &Dispatcher::handle_schedule, kScheduleRequired, kScheduleOptional},
    {"unschedule", &Dispatcher::handle_unschedule, kJobId, kNone},
    {"list_jobs", &Dispatcher::handle_list_jobs, kNone, kNone},
    {"query_lock", &Dispatcher::handle_query_lock, kLockName, kNone},
    {"list_methods", &Dispatcher::handle_list_methods, kNone, kNone},
    {"job_history", &Dispatcher::handle_job_history, kJobId, kLimitOptional},
    {"run_job", &Dispatcher::handle_run_job, kJobId, kNone},
    {"get_events_since", &Dispatcher::handle_get_events_since, kChannelPattern,
     kEventsSinceOptional},
};

const Dispatcher::Route* Dispatcher::route_for(std::string_view name) {
  for (const Route& route : kRoutes) {
    if (route.name == name) return &route;
  }
  return nullptr;
}

std::span<const std::string_view> Dispatcher::request_types() {
  static const std::vector<std::string_view> kNames = [] {
    std::vector<std::string_view> names;
    for (const Route& route : kRoutes) names.push_back(route.name);
    return names;
  }();
  return kNames;
}

Dispatcher::Dispatcher(DispatcherOptions options, Services& services, DaemonControl& control)
    : options_(options),
      services_(services),
      clock_(services.clock()),
      control_(control),
      parser_(options_.max_json_depth),
      started_steady_(clock_.steady()),
      started_system_(clock_.system()) {
  services_.calls().set_listener(this, [this] { reschedule(); });
  services_.set_deadline_changed([this] { reschedule(); });
}

Dispatcher::~Dispatcher() {
  services_.calls().set_listener(nullptr, nullptr);
  services_.set_deadline_changed(nullptr);
}

void Dispatcher::on_open(net::Peer& peer) {
  auto session = std::make_unique<Session>(peer, next_connection_id_++);
  sessions_.emplace(session->id(), session.get());
  peer.set_context(std::move(session));
}

std::string Dispatcher::refusal_line(net::TransportRefusal reason, std::uint64_t value) const {
  namespace messages = protocol::messages;
  const auto with_value = [value](std::string_view message_template) {
    return protocol::fill_message(message_template, std::to_string(value));
  };
  std::string message;
  switch (reason) {
    case net::TransportRefusal::kLineTooLong:
      message = with_value(messages::kLineTooLong);
      break;
    case net::TransportRefusal::kNoCredentials:
      message = messages::kNoPeerCredentials;
      break;
    case net::TransportRefusal::kPermissionDenied:
      message = with_value(messages::kPermissionDenied);
      break;
    case net::TransportRefusal::kTooManyConnections:
      message = with_value(messages::kTooManyConnections);
      break;
    case net::TransportRefusal::kBinaryMessage:
      message = messages::kBinaryWebSocketMessage;
      break;
  }
  return protocol::error_line(messages::kUnknownId, message);
}

void Dispatcher::on_close(net::Peer& peer) {
  auto* session = static_cast<Session*>(peer.context());
  if (session == nullptr) return;
  sessions_.erase(session->id());
  if (session->clock_controller()) --clock_controllers_;
  services_.connection_closed(session->id(), *session);
  reschedule();
  peer.set_context(nullptr);
}

void Dispatcher::on_timer() {
  services_.expire_due();
  reschedule();
}

void Dispatcher::reschedule() { control_.wake_at(services_.next_deadline()); }

bool Dispatcher::send_to(core::ConnectionId connection, std::string line) {
  auto found = sessions_.find(connection);
  if (found == sessions_.end()) return false;
  found->second->peer().send(std::move(line));
  return true;
}

void Dispatcher::on_line(net::Peer& peer, std::string_view line) {
  try {
    serve_line(peer, line);
  } catch (const std::exception& exception) {
    // No valid request is meant to end here. The client hears an error for its id rather than a
    // dropped connection, and the log names the request by type and size (never its content).
    const std::string_view type = serving_type_.empty() ? "unparsed" : serving_type_;
    peer.send(protocol::error_line(serving_id_, protocol::messages::kInternalError));
    throw net::RequestFailed("serving a " + std::string(type) + " request of " +
                             std::to_string(line.size()) + " bytes failed: " + exception.what());
  }
}

void Dispatcher::serve_line(net::Peer& peer, std::string_view line) {
  serving_type_ = {};
  serving_id_ = protocol::messages::kUnknownId;
  auto* session = static_cast<Session*>(peer.context());
  protocol::ParseResult parsed = parser_.parse(line);
  if (auto* error = std::get_if<protocol::RequestError>(&parsed)) {
    peer.send(protocol::error_line(error->id, error->message));
    return;
  }
  const Request& request = std::get<Request>(parsed);
  const Route* route = route_for(request.type);
  if (route == nullptr && request.type == kTestClockRequest && control_.has_test_clock()) {
    // Not in the table: it exists only in a daemon started with --test-clock.
    serving_type_ = kTestClockRequest;
    serving_id_.assign(request.id);
    return handle_test_clock(*session, request);
  }
  if (route == nullptr) {
    peer.send(protocol::error_line(request.id, protocol::unknown_type_message(request.type)));
    return;
  }
  serving_type_ = route->name;
  serving_id_.assign(request.id);
  if (auto error = protocol::validate_fields(request, route->required, route->optional)) {
    peer.send(protocol::error_line(request.id, *error));
    return;
  }
  (this->*route->handler)(*session, request);
}

void Dispatcher::handle_test_clock(Session& session, const Request& request) {
  if (!session.clock_controller()) {
    session.set_clock_controller();
    ++clock_controllers_;
  }
  std::variant<ClockMove, std::string> move = parse_clock_move(request);
  if (auto* error = std::get_if<std::string>(&move)) {
    session.peer().send(protocol::error_line(request.id, *error));
    return;
  }
  // Whatever the move makes due (other sessions' replies, job runs) is done before this reply.
  control_.move_test_clock(std::get<ClockMove>(move));
  session.peer().send(protocol::result_line(
      request.id, true,
      boost::json::object{{"wallMs", epoch_millis(clock_.system())},
                          {"steadyMs", std::chrono::duration_cast<std::chrono::milliseconds>(
                                           clock_.steady().time_since_epoch())
                                           .count()}}));
}

void Dispatcher::handle_ping(Session& session, const Request& request) {
  session.peer().send(protocol::pong_line(request.id));
}

void Dispatcher::handle_shutdown(Session& session, const Request& request) {
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"message", protocol::messages::kShutdownAccepted}}));
  control_.request_shutdown();
}

void Dispatcher::handle_status(Session& session, const Request& request) {
  // The list is capped so a daemon with a million channels still answers in one bounded line.
  const std::vector<core::ChannelCount> counts = services_.channels().channel_counts();
  boost::json::array channels;
  for (std::size_t i = 0; i < counts.size() && i < kStatusChannelsListed; ++i) {
    channels.push_back(boost::json::object{{"channel", counts[i].channel},
                                           {"subscribers", counts[i].subscribers},
                                           {"messages", counts[i].messages}});
  }
  const TransportCounters transport = control_.transport_counters();
  const core::ChannelRegistry& registry = services_.channels();
  const core::MethodHost* methods = services_.methods();
  const auto uptime =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady() - started_steady_);
  boost::json::object data{
      {"name", services_.options().photon_name},
      {"pid", static_cast<std::int64_t>(::getpid())},
      {"version", PHOTON_VERSION},
      {"startedAt", epoch_millis(started_system_)},
      {"uptimeMs", uptime.count()},
      {"connections", sessions_.size()},
      {"locks", services_.locks().held()},
      {"channels", std::move(channels)},
      {"channelCount", counts.size()},
      {"jobs", boost::json::object{{"count", services_.scheduler().size()},
                                   {"running", services_.scheduler().running()}}},
      {"methods", boost::json::object{{"count", methods ? methods->methods().size() : 0},
                                      {"running", services_.calls().running()},
                                      {"sessions", methods ? methods->stats().sessions : 0}}},
      {"counters", boost::json::object{{"published", registry.published()},
                                       {"delivered", registry.delivered()},
                                       {"droppedSlowConsumers", transport.dropped_slow_consumers},
                                       {"connectionsRefused", transport.connections_refused},
                                       {"acceptPauses", transport.accept_pauses}}},
  };
  if (const broker::Broker* broker = services_.broker()) data["broker"] = broker->status();
  for (auto& [key, value] : control_.extra_status()) data[key] = std::move(value);
  session.peer().send(protocol::result_line(request.id, true, data));
}

void Dispatcher::handle_subscribe(Session& session, const Request& request) {
  std::string_view channel = request.string_field("channel");
  using Outcome = core::ChannelRegistry::SubscribeOutcome;
  const ServiceOptions& limits = services_.options();
  const Outcome outcome =
      services_.channels().subscribe(session, channel, limits.max_subscriptions);
  if (outcome == Outcome::kLimitReached || outcome == Outcome::kTotalLimitReached) {
    const bool own = outcome == Outcome::kLimitReached;
    session.peer().send(protocol::error_line(
        request.id, own ? Refused{RefusalCode::kTooManySubscriptions,
                                  {std::to_string(limits.max_subscriptions)}}
                        : Refused{RefusalCode::kTooManySubscriptionsInDaemon,
                                  {std::to_string(limits.max_total_subscriptions)}}));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"subscribed", true}, {"channel", channel}}));
  // A subscriber coming back: what it missed, written in this same turn, so that nothing
  // published meanwhile falls between the replay and the live messages, or comes twice.
  if (request.find("lastEventId") != nullptr) {
    const core::ReplayedMessages owed = missed_since(request, channel);
    if (owed.gap || core::replay_bytes(owed) > options_.max_replay_bytes) {
      session.peer().send(protocol::refresh_needed_line(request.id, channel));
      return;
    }
    for (const SharedBytes& line : owed.lines) {
      session.peer().send(protocol::replayed_line(*line));
    }
  }
}

core::ReplayedMessages Dispatcher::missed_since(const Request& request,
                                                std::string_view channel) const {
  const auto matches = [&](std::string_view name) {
    return core::subscription_matches(channel, name);
  };
  const auto now = services_.clock().steady();
  const boost::json::value* last = request.find("lastEventId");
  if (last != nullptr) {
    const auto sequence = services_.sequence_of(last->get_string());
    // An earlier run's id vouches only for persistent channels: that run's other messages are gone.
    const bool vouched = sequence && (*sequence > services_.event_ids().carried_up_to() ||
                                      core::patterns_cover(services_.persist_patterns(), channel));
    if (vouched) return services_.replay_window().since(*sequence, matches, now);
  }
  // Without a lastEventId, all that is kept and nothing missed; with another epoch's id, a future
  // one or no event id at all, all that is kept, and nothing can show what was missed.
  return {.gap = last != nullptr, .lines = services_.replay_window().since(0, matches, now).lines};
}

void Dispatcher::handle_get_events_since(Session& session, const Request& request) {
  const std::string_view channel = request.string_field("channel");
  const core::ReplayedMessages owed = missed_since(request, channel);
  const std::int64_t limit = request.integer_field("limit", kDefaultEventsLimit);
  // A kept line is as deep as any message accepted (up to --max-json-depth's 10000, one more for
  // the line, or a broker's); the parser does not recurse.
  boost::json::parse_options any_depth;
  any_depth.max_depth = defaults::kMaxJsonDepthLimit + 1;
  boost::json::array events;
  for (const SharedBytes& line : owed.lines) {
    if (std::cmp_greater_equal(events.size(), limit)) break;
    // The kept line is the one subscribers got: its fields, without the transport's "ch_" id.
    boost::json::object kept = boost::json::parse(*line, {}, any_depth).as_object();
    events.push_back(boost::json::object{{"eventId", std::move(kept["eventId"])},
                                         {"channel", std::move(kept["channel"])},
                                         {"message", std::move(kept["message"])}});
  }
  session.peer().send(protocol::result_line(
      request.id, true,
      boost::json::object{{"events", std::move(events)}, {"refreshNeeded", owed.gap}}));
}

void Dispatcher::handle_unsubscribe(Session& session, const Request& request) {
  std::string_view channel = request.string_field("channel");
  services_.channels().unsubscribe(session, channel);
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"unsubscribed", true}, {"channel", channel}}));
}

void Dispatcher::handle_publish(Session& session, const Request& request) {
  std::string_view channel = request.string_field("channel");
  const boost::json::value& message = *request.find("message");
  Services::Published published = services_.publish(channel, &session, message, true);
  if (published.refused) {
    session.peer().send(protocol::error_line(request.id, *published.refused));
    return;
  }
  std::string line =
      protocol::published_line(request.id, channel, published.delivered, published.event_id);
  if (!published.write) {
    session.peer().send(std::move(line));
    return;
  }
  // A persistent channel: the publisher hears of its message once it is on disk, so that what was
  // acknowledged survives a crash (its subscribers have it already).
  services_.when_written(
      *published.write, [this, connection = session.id(), id = std::string(request.id),
                         channel = std::string(channel), line = std::move(line)](bool written) {
        const auto found = sessions_.find(connection);
        if (found == sessions_.end()) return;
        found->second->peer().send(
            written ? line
                    : protocol::error_line(id, Refused{RefusalCode::kPersistFailed, {channel}}));
      });
}

void Dispatcher::handle_lock(Session& session, const Request& request) {
  const std::string_view name = request.string_field("lockName");
  const core::LockRequest lock_request{
      .name = name,
      .holder = holder_of(request),
      .lease =
          std::chrono::milliseconds(request.integer_field("lockTimeout", kDefaultLockTimeoutMs)),
      .wait = std::chrono::milliseconds(request.integer_field("lockWait", 0)),
      .release_on_disconnect = request.bool_field("releaseOnDisconnect", false),
      .connection = session.id(),
      .renew_token = static_cast<std::uint64_t>(request.integer_field("renewToken", 0)),
  };
  // Answered now, or later (a waiter granted or timed out, the broker's answer) to the
  // connection if it is still open.
  services_.locks().acquire(
      lock_request, [this, connection = session.id(), id = std::string(request.id),
                     lock_name = std::string(name), wait = lock_request.wait,
                     renew_token = lock_request.renew_token](const core::LockResult& result) {
        return send_to(connection, lock_reply(id, lock_name, result, wait, renew_token));
      });
  reschedule();
}

void Dispatcher::handle_unlock(Session& session, const Request& request) {
  const std::string_view name = request.string_field("lockName");
  services_.locks().release(session.id(), name, holder_of(request),
                            [this, connection = session.id(), id = std::string(request.id),
                             lock_name = std::string(name)](const core::ReleaseResult& result) {
                              send_to(connection, unlock_reply(id, lock_name, result));
                            });
  reschedule();
}

void Dispatcher::handle_list_locks(Session& session, const Request& request) {
  services_.locks().list([this, connection = session.id(),
                          id = std::string(request.id)](const core::LockListResult& result) {
    send_to(connection, list_locks_reply(id, result));
  });
  reschedule();
}

void Dispatcher::handle_query_lock(Session& session, const Request& request) {
  services_.locks().query(request.string_field("lockName"),
                          [this, connection = session.id(),
                           id = std::string(request.id)](const core::LockQueryResult& result) {
                            send_to(connection, query_lock_reply(id, result));
                          });
  reschedule();
}

void Dispatcher::handle_command(Session& session, const Request& request) {
  const std::string_view method = request.string_field("method");
  core::CallRequest call_request;
  call_request.method = std::string(method);
  if (const boost::json::value* args = request.find("args")) call_request.args = args->get_object();
  const std::string_view session_id = request.string_field("sessionId");
  call_request.session_id = std::string(session_id.empty() ? kDefaultSession : session_id);
  call_request.client_type = std::string(request.string_field("clientType"));
  if (auto refused = services_.calls().start(session.id(), &session, std::string(request.id),
                                             std::move(call_request))) {
    session.peer().send(protocol::error_line(
        request.id, call_refusal_message(*refused, services_.options().photon_name, method,
                                         request.id, services_.methods())));
  }
}

void Dispatcher::handle_prompt_response(Session& session, const Request& request) {
  const boost::json::value& value = *request.find("promptValue");
  // An answer to a prompt that has timed out already is dropped: the command's own reply is
  // still to come on this id, and an error here would read as its failure.
  const auto outcome = services_.calls().answer(
      session.id(), request.id,
      value.is_null() ? std::nullopt : std::optional<boost::json::value>(value));
  if (outcome == MethodCalls::AnswerOutcome::kNoCommand) {
    session.peer().send(protocol::error_line(
        request.id,
        "no command with id \"" + std::string(request.id) + "\" is running on this connection"));
    return;
  }
  if (outcome == MethodCalls::AnswerOutcome::kAnswered) reschedule();
}

void Dispatcher::handle_list_methods(Session& session, const Request& request) {
  boost::json::array methods;
  if (const core::MethodHost* host = services_.methods()) {
    for (const core::MethodInfo& method : host->methods()) {
      boost::json::array params;
      for (const core::ParamInfo& param : method.params) {
        params.push_back(boost::json::object{{"name", param.name},
                                             {"type", param.type},
                                             {"description", param.description},
                                             {"required", param.required}});
      }
      methods.push_back(boost::json::object{{"name", method.name},
                                            {"description", method.description},
                                            {"params", std::move(params)}});
    }
  }
  session.peer().send(
      protocol::result_line(request.id, true,
                            boost::json::object{{"photon", services_.options().photon_name},
                                                {"methods", std::move(methods)}}));
}

void Dispatcher::call_emitted(core::ConnectionId caller, std::string_view id,
                              const boost::json::object& event) {
  send_to(caller, protocol::emit_line(id, event));
}

void Dispatcher::call_emit_refused(core::ConnectionId caller, std::string_view id,
                                   boost::json::object event, std::string_view problem) {
  send_to(caller, protocol::emit_line(id, boost::json::object{{"error", "emit not published: " +
                                                                            std::string(problem)},
                                                              {"event", std::move(event)}}));
}

void Dispatcher::call_prompted(core::ConnectionId caller, std::string_view id,
                               const boost::json::object& prompt) {
  send_to(caller, protocol::prompt_line(id, prompt));
}

void Dispatcher::call_finished(core::ConnectionId caller, std::string_view id,
                               const core::CallOutcome& outcome) {
  send_to(caller, outcome.ok() ? protocol::result_line(id, true, outcome.data)
                               : protocol::error_line(id, outcome.error));
}

namespace {

boost::json::value millis_or_null(const std::optional<core::EpochMillis>& millis) {
  return millis ? boost::json::value(*millis) : boost::json::value(nullptr);
}

boost::json::object job_json(const core::JobState& job) {
  return {{"id", job.spec.id},
          {"method", job.spec.method},
          {"args", job.spec.args},
          {"cron", job.spec.cron},
          {"timezone", job.spec.timezone},
          {"catchUp", core::to_string(job.spec.catch_up)},
          {"overlap", core::to_string(job.spec.overlap)},
          {"lastRun", millis_or_null(job.last_run)},
          {"nextRun", millis_or_null(job.next_run)},
          {"runCount", job.run_count},
          {"createdAt", job.created_at},
          {"createdBy", job.spec.created_by},
          {"declared", job.spec.declared},
          {"lastStatus", job.last_status ? core::to_string(*job.last_status) : ""},
          {"lastError", job.last_error}};
}

boost::json::object run_json(const core::JobRun& run) {
  boost::json::object json{
      {"runId", run.run_id},
      {"trigger", core::to_string(run.trigger)},
      {"scheduledFor", run.scheduled_for},
      {"startedAt", run.started_at},
      {"endedAt", millis_or_null(run.ended_at)},
      {"durationMs", run.ended_at ? boost::json::value(*run.ended_at - run.started_at)
                                  : boost::json::value(nullptr)},
      {"status", core::to_string(run.status)},
      {"error", run.error},
      {"interrupted", run.interrupted},
      {"foundAt", millis_or_null(run.found_at)}};
  return json;
}

}  // namespace

void Dispatcher::handle_schedule(Session& session, const Request& request) {
  core::JobSpec spec;
  spec.id = std::string(request.string_field("jobId"));
  spec.method = std::string(request.string_field("method"));
  spec.cron = std::string(request.string_field("cron"));
  if (const boost::json::value* args = request.find("args")) spec.args = args->get_object();
  spec.timezone = std::string(request.string_field("timezone"));
  spec.catch_up =
      core::parse_catch_up(request.string_field("catchUp")).value_or(core::CatchUp::kLatest);
  spec.overlap =
      core::parse_overlap(request.string_field("overlap")).value_or(core::Overlap::kSkip);
  const std::string_view created_by = request.string_field("sessionId");
  spec.created_by = std::string(created_by);
  const std::string job_id = spec.id;
  const auto result = services_.scheduler().schedule(std::move(spec));
  if (!result.ok()) {
    session.peer().send(protocol::result_line(
        request.id, false,
        boost::json::object{{"scheduled", false}, {"jobId", job_id}, {"reason", result.reason}}));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true,
      boost::json::object{
          {"scheduled", true}, {"jobId", job_id}, {"nextRun", millis_or_null(*result.value)}}));
  reschedule();
}

void Dispatcher::handle_unschedule(Session& session, const Request& request) {
  const std::string job_id(request.string_field("jobId"));
  const auto result = services_.scheduler().unschedule(job_id);
  if (!result.ok()) {
    session.peer().send(protocol::result_line(
        request.id, false,
        boost::json::object{{"unscheduled", false}, {"jobId", job_id}, {"reason", result.reason}}));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"unscheduled", true}, {"jobId", job_id}}));
  reschedule();
}

void Dispatcher::handle_list_jobs(Session& session, const Request& request) {
  boost::json::array jobs;
  for (const core::JobState* job : services_.scheduler().jobs()) jobs.push_back(job_json(*job));
  session.peer().send(
      protocol::result_line(request.id, true, boost::json::object{{"jobs", std::move(jobs)}}));
}

void Dispatcher::handle_job_history(Session& session, const Request& request) {
  const std::string job_id(request.string_field("jobId"));
  if (services_.scheduler().find(job_id) == nullptr) {
    session.peer().send(
        protocol::error_line(request.id, Refused{RefusalCode::kNoSuchJob, {job_id}}));
    return;
  }
  boost::json::array runs;
  const auto limit = static_cast<std::size_t>(request.integer_field("limit", kDefaultHistoryLimit));
  if (broker::Broker* broker = services_.broker()) {
    // Shared jobs' runs are kept in the broker, whichever daemon ran them.
    return broker->job_history(
        job_id, limit,
        [this, connection = session.id(), id = std::string(request.id), job_id](
            boost::json::array shared, std::string error) {
          send_to(connection,
                  error.empty()
                      ? protocol::result_line(
                            id, true,
                            boost::json::object{{"jobId", job_id}, {"runs", std::move(shared)}})
                      : protocol::error_line(
                            id, Refused{RefusalCode::kJobHistoryUnavailable, {std::move(error)}}));
        });
  }
  for (const core::JobRun& run : services_.scheduler().history(job_id, limit))
    runs.push_back(run_json(run));
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"jobId", job_id}, {"runs", std::move(runs)}}));
}

void Dispatcher::handle_run_job(Session& session, const Request& request) {
  const std::string job_id(request.string_field("jobId"));
  const auto run_id = services_.scheduler().run_now(job_id);
  if (!run_id.ok()) {
    session.peer().send(protocol::result_line(
        request.id, false,
        boost::json::object{{"started", false}, {"jobId", job_id}, {"reason", run_id.reason}}));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true,
      boost::json::object{{"started", true}, {"jobId", job_id}, {"runId", *run_id.value}}));
}

}  // namespace photon::daemon
