// Request dispatch: the table, and the handlers of the requests this daemon serves. Handlers
// stay thin: they read validated fields, ask a service, and queue one reply.
#include "daemon/dispatcher.hpp"

#include "daemon/lock_replies.hpp"
#include "locks/local_lock_service.hpp"
#include "methods/method_args.hpp"

#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

#include <unistd.h>

#include <array>

namespace photon::daemon {

using protocol::Field;
using protocol::Request;
using protocol::RequestType;

// A client connection's state: its peer, its identity as a channel subscriber, and the commands
// it has running (by request id, which is also how their prompts are answered).
class Dispatcher::Session final : public net::PeerContext, public core::Subscriber {
 public:
  Session(net::Peer& peer, core::ConnectionId id) : peer_(peer), id_(id) {}
  void deliver(const SharedBytes& line) override { peer_.send(line); }
  net::Peer& peer() { return peer_; }
  core::ConnectionId id() const { return id_; }

  std::map<std::string, std::shared_ptr<CommandCall>, std::less<>> commands;

 private:
  net::Peer& peer_;
  core::ConnectionId id_;
};

// One running `command`: the observer its method host reports to. It outlives its connection
// when the caller leaves (the method runs on; what it sends then goes nowhere but its channels).
// Thread rule: the event loop thread only.
class Dispatcher::CommandCall final : public core::CallObserver {
  std::weak_ptr<Dispatcher*> dispatcher_;

 public:
  CommandCall(std::weak_ptr<Dispatcher*> dispatcher, Session& session, std::string id,
              std::string method)
      : dispatcher_(std::move(dispatcher)),
        session(&session),
        id(std::move(id)),
        method(std::move(method)) {}

  void on_emit(boost::json::object event) override {
    if (auto owner = dispatcher_.lock()) (*owner)->command_emitted(*this, std::move(event));
  }
  void on_prompt(boost::json::object prompt, core::PromptAnswer answer) override {
    if (auto owner = dispatcher_.lock()) {
      (*owner)->command_prompted(*this, std::move(prompt), std::move(answer));
    } else {
      answer(std::nullopt);
    }
  }
  void on_finish(core::CallOutcome outcome) override {
    if (auto owner = dispatcher_.lock()) (*owner)->command_finished(*this, std::move(outcome));
  }

  // Null once the caller's connection has closed.
  Session* session;
  const std::string id;
  const std::string method;
  // The prompt waiting for its answer, if any, and its entry in prompt_deadlines_.
  core::PromptAnswer pending_answer;
  std::multimap<std::chrono::steady_clock::time_point, CommandCall*>::iterator deadline;
};

namespace {

constexpr std::array<Field, 0> kNone{};
constexpr std::array kChannelPattern{Field::kChannelPattern};
constexpr std::array kPublishFields{Field::kChannel, Field::kMessage};
constexpr std::array kLockName{Field::kLockName};
constexpr std::array kLockOptional{Field::kLockTimeout, Field::kLockWait,
                                   Field::kReleaseOnDisconnect};
constexpr std::array kCommandRequired{Field::kMethod};
constexpr std::array kCommandOptional{Field::kArgs, Field::kClientType};
constexpr std::array kPromptResponseRequired{Field::kPromptValue};
constexpr std::array kScheduleRequired{Field::kJobId, Field::kMethod, Field::kCron};
constexpr std::array kScheduleOptional{Field::kArgs, Field::kTimezone, Field::kCatchUp,
                                       Field::kOverlap};
constexpr std::array kJobId{Field::kJobId};
constexpr std::array kLimitOptional{Field::kLimit};
constexpr std::int64_t kDefaultHistoryLimit = 20;
constexpr std::int64_t kDefaultLockTimeoutMs = 30'000;
constexpr std::string_view kDefaultSession = "default";
// An unknown method's error lists at most this many of the available ones.
constexpr std::size_t kMethodsListedInError = 50;
constexpr std::size_t kStatusChannelsListed = 1000;

// The holder of a lock request: its session, else its id (as the spec's daemon does).
std::string_view holder_of(const Request& request) {
  std::string_view session = request.string_field("sessionId");
  return session.empty() ? request.id : session;
}

}  // namespace

const Dispatcher::Route& Dispatcher::route_for(RequestType type) {
  // Indexed by RequestType; the static_assert below keeps the two in step.
  static const std::array<Route, protocol::kRequestTypeCount> kRoutes = {{
      {RequestType::kPing, &Dispatcher::handle_ping, kNone, kNone},
      {RequestType::kShutdown, &Dispatcher::handle_shutdown, kNone, kNone},
      {RequestType::kStatus, &Dispatcher::handle_status, kNone, kNone},
      {RequestType::kSubscribe, &Dispatcher::handle_subscribe, kChannelPattern, kNone},
      {RequestType::kUnsubscribe, &Dispatcher::handle_unsubscribe, kChannelPattern, kNone},
      {RequestType::kPublish, &Dispatcher::handle_publish, kPublishFields, kNone},
      {RequestType::kCommand, &Dispatcher::handle_command, kCommandRequired, kCommandOptional},
      {RequestType::kPromptResponse, &Dispatcher::handle_prompt_response, kPromptResponseRequired,
       kNone},
      {RequestType::kLock, &Dispatcher::handle_lock, kLockName, kLockOptional},
      {RequestType::kUnlock, &Dispatcher::handle_unlock, kLockName, kNone},
      {RequestType::kListLocks, &Dispatcher::handle_list_locks, kNone, kNone},
      {RequestType::kSchedule, &Dispatcher::handle_schedule, kScheduleRequired, kScheduleOptional},
      {RequestType::kUnschedule, &Dispatcher::handle_unschedule, kJobId, kNone},
      {RequestType::kListJobs, &Dispatcher::handle_list_jobs, kNone, kNone},
      {RequestType::kQueryLock, &Dispatcher::handle_query_lock, kLockName, kNone},
      {RequestType::kListMethods, &Dispatcher::handle_list_methods, kNone, kNone},
      {RequestType::kJobHistory, &Dispatcher::handle_job_history, kJobId, kLimitOptional},
      {RequestType::kRunJob, &Dispatcher::handle_run_job, kJobId, kNone},
  }};
  static_assert(kRoutes.size() == protocol::kRequestTypeCount);
  return kRoutes[static_cast<std::size_t>(type)];
}

Dispatcher::Dispatcher(DispatcherOptions options, const Clock& clock, DaemonControl& control,
                       core::TokenAllocator& tokens, core::MethodHost* methods,
                       core::JobPersistence* jobs)
    : options_(std::move(options)),
      clock_(clock),
      control_(control),
      parser_(options_.max_json_depth),
      channels_(options_.max_total_subscriptions),
      locks_(std::make_unique<core::LocalLockService>(clock, tokens, options_.lock_limits)),
      started_steady_(clock.steady()),
      started_system_(clock.system()),
      methods_(methods),
      scheduler_({.photon_name = options_.photon_name,
                  .max_jobs = options_.max_jobs,
                  .missed_after = options_.missed_after},
                 clock, methods, jobs != nullptr ? *jobs : memory_only_jobs_, *this) {
  for (std::size_t i = 0; i < protocol::kRequestTypeCount; ++i) {
    if (static_cast<std::size_t>(route_for(static_cast<RequestType>(i)).type) != i) {
      throw std::logic_error("dispatch table is out of order");
    }
  }
}

Dispatcher::~Dispatcher() = default;

void Dispatcher::on_open(net::Peer& peer) {
  auto session = std::make_unique<Session>(peer, next_connection_id_++);
  sessions_.emplace(session->id(), session.get());
  peer.set_context(std::move(session));
  ++open_sessions_;
}

void Dispatcher::on_close(net::Peer& peer) {
  auto* session = static_cast<Session*>(peer.context());
  if (session == nullptr) return;
  channels_.unsubscribe_all(*session);
  sessions_.erase(session->id());
  locks_->connection_closed(session->id());
  // Its commands run on without a caller: prompts get no answer, the rest goes nowhere.
  for (auto& [id, call] : session->commands) {
    call->session = nullptr;
    if (call->pending_answer) answer_prompt(*call, std::nullopt);
  }
  session->commands.clear();
  reschedule();
  peer.set_context(nullptr);
  --open_sessions_;
}

void Dispatcher::on_timer() {
  locks_->expire_due();
  scheduler_.tick();
  const auto now = clock_.steady();
  while (!prompt_deadlines_.empty() && prompt_deadlines_.begin()->first <= now) {
    answer_prompt(*prompt_deadlines_.begin()->second, std::nullopt);
  }
  reschedule();
}

void Dispatcher::reschedule() {
  std::optional<std::chrono::steady_clock::time_point> next = locks_->next_deadline();
  if (!prompt_deadlines_.empty()) {
    const auto prompt = prompt_deadlines_.begin()->first;
    if (!next || prompt < *next) next = prompt;
  }
  if (auto jobs = scheduler_.next_wake(); jobs && (!next || *jobs < *next)) next = jobs;
  control_.wake_at(next);
}

void Dispatcher::on_line(net::Peer& peer, std::string_view line) {
  try {
    serve_line(peer, line);
  } catch (const std::exception& exception) {
    // No valid request is meant to end here. The client hears an error for its id rather than a
    // dropped connection, and the log names the request by type and size (never its content).
    const std::string_view type =
        serving_type_ ? protocol::request_type_name(*serving_type_) : std::string_view("unparsed");
    peer.send(protocol::error_line(serving_id_, protocol::messages::kInternalError));
    throw net::RequestFailed("serving a " + std::string(type) + " request of " +
                             std::to_string(line.size()) + " bytes failed: " + exception.what());
  }
}

void Dispatcher::serve_line(net::Peer& peer, std::string_view line) {
  serving_type_.reset();
  serving_id_ = protocol::messages::kUnknownId;
  auto* session = static_cast<Session*>(peer.context());
  protocol::ParseResult parsed = parser_.parse(line);
  if (auto* error = std::get_if<protocol::RequestError>(&parsed)) {
    peer.send(protocol::error_line(error->id, error->message));
    return;
  }
  const Request& request = std::get<Request>(parsed);
  serving_type_ = request.type;
  serving_id_.assign(request.id);
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
                                           {"subscribers", counts[i].subscribers},
                                           {"messages", counts[i].messages}});
  }
  const TransportCounters transport = control_.transport_counters();
  const auto uptime =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady() - started_steady_);
  boost::json::object data{
      {"name", options_.photon_name},
      {"pid", static_cast<std::int64_t>(::getpid())},
      {"version", PHOTON_VERSION},
      {"startedAt", epoch_millis(started_system_)},
      {"uptimeMs", uptime.count()},
      {"connections", open_sessions_},
      {"locks", locks_->held()},
      {"channels", std::move(channels)},
      {"channelCount", counts.size()},
      {"jobs",
       boost::json::object{{"count", scheduler_.size()}, {"running", scheduler_.running()}}},
      {"methods", boost::json::object{{"count", methods_ ? methods_->methods().size() : 0},
                                      {"running", running_commands_},
                                      {"sessions", methods_ ? methods_->stats().sessions : 0}}},
      {"counters", boost::json::object{{"published", channels_.published()},
                                       {"delivered", channels_.delivered()},
                                       {"droppedSlowConsumers", transport.dropped_slow_consumers},
                                       {"connectionsRefused", transport.connections_refused}}},
  };
  if (broker_ != nullptr) data["broker"] = broker_->status();
  for (auto& [key, value] : control_.extra_status()) data[key] = std::move(value);
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
        protocol::fill_message(
            own ? protocol::messages::kTooManySubscriptions
                : protocol::messages::kTooManySubscriptionsInDaemon,
            std::to_string(own ? options_.max_subscriptions : options_.max_total_subscriptions))));
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
  const std::size_t delivered = publish_message(channel, &session, message);
  session.peer().send(protocol::published_line(request.id, channel, delivered));
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
  };
  // Answered now, or later (a waiter granted or timed out, the broker's answer) to the
  // connection if it is still open.
  locks_->acquire(lock_request, [this, connection = session.id(), id = std::string(request.id),
                                 lock_name = std::string(name),
                                 wait = lock_request.wait](const core::LockResult& result) {
    return send_to(connection, lock_reply(id, lock_name, result, wait));
  });
  reschedule();
}

void Dispatcher::handle_unlock(Session& session, const Request& request) {
  const std::string_view name = request.string_field("lockName");
  locks_->release(session.id(), name, holder_of(request),
                  [this, connection = session.id(), id = std::string(request.id),
                   lock_name = std::string(name)](const core::ReleaseResult& result) {
                    send_to(connection, unlock_reply(id, lock_name, result));
                  });
  reschedule();
}

void Dispatcher::handle_list_locks(Session& session, const Request& request) {
  locks_->list([this, connection = session.id(),
                id = std::string(request.id)](const core::LockListResult& result) {
    send_to(connection, list_locks_reply(id, result));
  });
  reschedule();
}

void Dispatcher::handle_query_lock(Session& session, const Request& request) {
  locks_->query(request.string_field("lockName"),
                [this, connection = session.id(),
                 id = std::string(request.id)](const core::LockQueryResult& result) {
                  send_to(connection, query_lock_reply(id, result));
                });
  reschedule();
}

bool Dispatcher::send_to(core::ConnectionId connection, std::string line) {
  auto found = sessions_.find(connection);
  if (found == sessions_.end()) return false;
  found->second->peer().send(std::move(line));
  return true;
}

void Dispatcher::handle_command(Session& session, const Request& request) {
  const std::string_view method = request.string_field("method");
  if (methods_ == nullptr) {
    session.peer().send(protocol::error_line(
        request.id, "photon \"" + options_.photon_name +
                        "\" has no methods (serve a manifest with --manifest, or a C++ photon)"));
    return;
  }
  const core::MethodInfo* info = core::find_method(*methods_, method);
  if (info == nullptr) {
    std::string available;
    const auto& all = methods_->methods();
    for (std::size_t i = 0; i < all.size() && i < kMethodsListedInError; ++i) {
      available += (i == 0 ? "" : ", ") + all[i].name;
    }
    if (all.size() > kMethodsListedInError) {
      available += " and " + std::to_string(all.size() - kMethodsListedInError) + " more";
    }
    session.peer().send(protocol::error_line(
        request.id, "unknown method \"" + std::string(method) +
                        "\"; available: " + (available.empty() ? "none" : available)));
    return;
  }
  if (session.commands.contains(request.id)) {
    session.peer().send(protocol::error_line(
        request.id, "a command with id \"" + std::string(request.id) +
                        "\" is already running on this connection (ids must be unique)"));
    return;
  }
  if (session.commands.size() >= options_.max_commands_per_connection) {
    session.peer().send(protocol::error_line(
        request.id, "too many commands running on this connection (limit " +
                        std::to_string(options_.max_commands_per_connection) + ")"));
    return;
  }
  if (running_commands_ >= options_.max_running_commands) {
    session.peer().send(
        protocol::error_line(request.id, "too many commands running in the daemon (limit " +
                                             std::to_string(options_.max_running_commands) + ")"));
    return;
  }
  core::CallRequest call_request;
  call_request.method = std::string(method);
  if (const boost::json::value* args = request.find("args")) call_request.args = args->get_object();
  if (auto problem = core::check_call_args(*info, call_request.args)) {
    session.peer().send(protocol::error_line(request.id, *problem));
    return;
  }
  const std::string_view session_id = request.string_field("sessionId");
  call_request.session_id = std::string(session_id.empty() ? kDefaultSession : session_id);
  call_request.client_type = std::string(request.string_field("clientType"));
  auto call =
      std::make_shared<CommandCall>(self_, session, std::string(request.id), call_request.method);
  session.commands.emplace(call->id, call);
  ++running_commands_;
  methods_->start(std::move(call_request), std::move(call));
}

void Dispatcher::handle_prompt_response(Session& session, const Request& request) {
  auto found = session.commands.find(request.id);
  if (found == session.commands.end()) {
    session.peer().send(protocol::error_line(
        request.id,
        "no command with id \"" + std::string(request.id) + "\" is running on this connection"));
    return;
  }
  // An answer to a prompt that has timed out already is dropped: the command's own reply is
  // still to come on this id, and an error here would read as its failure.
  CommandCall& call = *found->second;
  if (!call.pending_answer) return;
  const boost::json::value& value = *request.find("promptValue");
  answer_prompt(call, value.is_null() ? std::nullopt : std::optional<boost::json::value>(value));
  reschedule();
}

void Dispatcher::handle_list_methods(Session& session, const Request& request) {
  boost::json::array methods;
  if (methods_ != nullptr) {
    for (const core::MethodInfo& method : methods_->methods()) {
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
  session.peer().send(protocol::result_line(
      request.id, true,
      boost::json::object{{"photon", options_.photon_name}, {"methods", std::move(methods)}}));
}

void Dispatcher::command_emitted(CommandCall& call, boost::json::object event) {
  const boost::json::value* channel = event.if_contains("channel");
  if (channel == nullptr) {
    if (call.session != nullptr) call.session->peer().send(protocol::emit_line(call.id, event));
    return;
  }
  // The whole event is the message, as the spec's daemon publishes it; the caller's own
  // connection is excluded like any publisher's.
  std::optional<std::string> invalid =
      channel->is_string() ? protocol::channel_name_error(channel->get_string(), false)
                           : std::optional<std::string>(protocol::messages::kChannelNotString);
  if (invalid) {
    // The method's mistake, not the caller's: the caller sees it as progress, so it is noticed.
    if (call.session != nullptr) {
      call.session->peer().send(protocol::emit_line(
          call.id, boost::json::object{{"error", "emit not published: " + *invalid},
                                       {"event", std::move(event)}}));
    }
    return;
  }
  const std::string name(channel->get_string());
  const boost::json::value message(std::move(event));
  publish_message(name, call.session, message);
}

void Dispatcher::command_prompted(CommandCall& call, boost::json::object prompt,
                                  core::PromptAnswer answer) {
  // No caller to ask, or a second prompt while one waits (one question at a time per call).
  if (call.session == nullptr || call.pending_answer) {
    answer(std::nullopt);
    return;
  }
  call.pending_answer = std::move(answer);
  call.deadline = prompt_deadlines_.emplace(clock_.steady() + options_.prompt_timeout, &call);
  call.session->peer().send(protocol::prompt_line(call.id, prompt));
  reschedule();
}

void Dispatcher::answer_prompt(CommandCall& call, std::optional<boost::json::value> answer) {
  core::PromptAnswer pending = std::move(call.pending_answer);
  call.pending_answer = nullptr;
  prompt_deadlines_.erase(call.deadline);
  pending(std::move(answer));
}

void Dispatcher::command_finished(CommandCall& call, core::CallOutcome outcome) {
  --running_commands_;
  if (call.pending_answer) answer_prompt(call, std::nullopt);
  Session* session = call.session;
  if (session == nullptr) return;
  session->peer().send(outcome.ok() ? protocol::result_line(call.id, true, outcome.data)
                                    : protocol::error_line(call.id, outcome.error));
  const std::string id = call.id;
  session->commands.erase(id);  // may destroy `call`
  reschedule();
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
          {"catchUp", job.spec.catch_up == core::CatchUp::kLatest ? "latest" : "skip"},
          {"overlap", job.spec.overlap == core::Overlap::kSkip ? "skip" : "allow"},
          {"lastRun", millis_or_null(job.last_run)},
          {"nextRun", millis_or_null(job.next_run)},
          {"runCount", job.run_count},
          {"createdAt", job.created_at},
          {"createdBy", job.spec.created_by},
          {"declared", job.spec.declared},
          {"lastStatus", job.last_status},
          {"lastError", job.last_error}};
}

boost::json::object run_json(const core::JobRun& run) {
  boost::json::object json{
      {"runId", run.run_id},
      {"trigger", run.trigger},
      {"scheduledFor", run.scheduled_for},
      {"startedAt", run.started_at},
      {"endedAt", millis_or_null(run.ended_at)},
      {"durationMs", run.ended_at ? boost::json::value(*run.ended_at - run.started_at)
                                  : boost::json::value(nullptr)},
      {"status", run.status},
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
      request.string_field("catchUp") == "skip" ? core::CatchUp::kSkip : core::CatchUp::kLatest;
  spec.overlap =
      request.string_field("overlap") == "allow" ? core::Overlap::kAllow : core::Overlap::kSkip;
  const std::string_view created_by = request.string_field("sessionId");
  spec.created_by = std::string(created_by);
  const std::string job_id = spec.id;
  const core::ScheduleResult result = scheduler_.schedule(std::move(spec));
  if (!result.scheduled) {
    session.peer().send(protocol::result_line(
        request.id, false,
        boost::json::object{{"scheduled", false}, {"jobId", job_id}, {"reason", result.reason}}));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true,
      boost::json::object{
          {"scheduled", true}, {"jobId", job_id}, {"nextRun", millis_or_null(result.next_run)}}));
  reschedule();
}

void Dispatcher::handle_unschedule(Session& session, const Request& request) {
  const std::string job_id(request.string_field("jobId"));
  std::string reason;
  if (!scheduler_.unschedule(job_id, reason)) {
    session.peer().send(protocol::result_line(
        request.id, false,
        boost::json::object{{"unscheduled", false}, {"jobId", job_id}, {"reason", reason}}));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"unscheduled", true}, {"jobId", job_id}}));
  reschedule();
}

void Dispatcher::handle_list_jobs(Session& session, const Request& request) {
  boost::json::array jobs;
  for (const core::JobState* job : scheduler_.jobs()) jobs.push_back(job_json(*job));
  session.peer().send(
      protocol::result_line(request.id, true, boost::json::object{{"jobs", std::move(jobs)}}));
}

void Dispatcher::handle_job_history(Session& session, const Request& request) {
  const std::string job_id(request.string_field("jobId"));
  if (scheduler_.find(job_id) == nullptr) {
    session.peer().send(protocol::error_line(request.id, "no job \"" + job_id + "\""));
    return;
  }
  boost::json::array runs;
  const auto limit = static_cast<std::size_t>(request.integer_field("limit", kDefaultHistoryLimit));
  if (broker_ != nullptr) {
    // Shared jobs' runs are kept in the broker, whichever daemon ran them.
    return broker_->job_history(
        job_id, limit,
        [this, connection = session.id(), id = std::string(request.id), job_id](
            boost::json::array shared, std::string error) {
          auto found = sessions_.find(connection);
          if (found == sessions_.end()) return;
          found->second->peer().send(
              error.empty()
                  ? protocol::result_line(
                        id, true,
                        boost::json::object{{"jobId", job_id}, {"runs", std::move(shared)}})
                  : protocol::error_line(id, "job history unavailable: " + error));
        });
  }
  for (const core::JobRun& run : scheduler_.history(job_id, limit)) runs.push_back(run_json(run));
  session.peer().send(protocol::result_line(
      request.id, true, boost::json::object{{"jobId", job_id}, {"runs", std::move(runs)}}));
}

void Dispatcher::handle_run_job(Session& session, const Request& request) {
  const std::string job_id(request.string_field("jobId"));
  std::string reason;
  const std::optional<std::uint64_t> run_id = scheduler_.run_now(job_id, reason);
  if (!run_id) {
    session.peer().send(protocol::result_line(
        request.id, false,
        boost::json::object{{"started", false}, {"jobId", job_id}, {"reason", reason}}));
    return;
  }
  session.peer().send(protocol::result_line(
      request.id, true,
      boost::json::object{{"started", true}, {"jobId", job_id}, {"runId", *run_id}}));
}

void Dispatcher::publish(const std::string& channel, const boost::json::value& message) {
  publish_message(channel, nullptr, message);
}

std::size_t Dispatcher::publish_message(std::string_view channel, const core::Subscriber* exclude,
                                        const boost::json::value& message) {
  if (broker_ != nullptr) broker_->forward(channel, message);
  return deliver_locally(channel, exclude, message);
}

std::size_t Dispatcher::deliver_locally(std::string_view channel, const core::Subscriber* exclude,
                                        const boost::json::value& message) {
  SharedBytes line;
  std::uint64_t sequence = 0;
  const auto make_line = [&] {
    if (!line) {
      sequence = next_message_sequence_++;
      line = make_shared_bytes(protocol::channel_message_line(sequence, channel, message));
    }
    return line;
  };
  const std::size_t delivered = channels_.publish(channel, exclude, make_line);
  if (message_tap_) {
    make_line();
    message_tap_(sequence, channel, line);
  }
  return delivered;
}

}  // namespace photon::daemon

namespace photon::daemon {

void Dispatcher::set_broker(broker::Broker& broker, core::TokenMark& tokens) {
  broker_ = &broker;
  broker.set_listener(this);
  auto shared = std::make_unique<broker::BrokerLockService>(
      clock_, broker, tokens, options_.lock_limits, [this] { reschedule(); });
  shared_locks_ = shared.get();
  locks_ = std::move(shared);
}

void Dispatcher::remote_message(std::string_view channel, const boost::json::value& message) {
  // What another daemon forwards is checked like a client's publish: Redis is shared ground.
  if (protocol::channel_name_error(channel, false)) return;
  deliver_locally(channel, nullptr, message);
}

void Dispatcher::lock_released(std::string_view name) {
  if (shared_locks_ != nullptr) shared_locks_->lock_released(name);
  reschedule();
}

void Dispatcher::shared_state_changed() { reschedule(); }

}  // namespace photon::daemon
