// The dispatch table: every request type, the fields it requires and may carry, and the function
// that serves it. This file is the index of the protocol; adding a request type is one row and
// one handler.
#pragma once

#include "broker/broker.hpp"
#include "broker/broker_lock_service.hpp"
#include "channels/channel_registry.hpp"
#include "common/clock.hpp"
#include "common/shared_bytes.hpp"
#include "jobs/scheduler.hpp"
#include "locks/lock_service.hpp"
#include "methods/method_host.hpp"
#include "net/peer.hpp"
#include "protocol/request.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>

namespace photon::daemon {

// Counters the transport keeps, shown by `status`.
struct TransportCounters {
  std::uint64_t dropped_slow_consumers = 0;
  std::uint64_t connections_refused = 0;
};

// What handlers may ask of the daemon around them.
class DaemonControl {
 public:
  virtual ~DaemonControl() = default;
  // Begins a graceful shutdown after the current request's reply has been queued.
  virtual void request_shutdown() = 0;
  virtual TransportCounters transport_counters() const = 0;
  // Asks for on_timer() to be called at `when`, replacing any earlier request; nothing (no value)
  // cancels the earlier request.
  virtual void wake_at(std::optional<std::chrono::steady_clock::time_point> when) = 0;
  // Members the daemon adds to the `status` data (the webhook endpoint's address, say).
  virtual boost::json::object extra_status() const { return {}; }
};

struct DispatcherOptions {
  std::string photon_name;
  std::size_t max_json_depth = 64;
  std::size_t max_subscriptions = 4096;
  core::LockLimits lock_limits;
  std::size_t max_total_subscriptions = 1'000'000;
  // How long a method's prompt waits for its answer before the method gets none.
  std::chrono::milliseconds prompt_timeout{5 * 60 * 1000};
  // Commands running at once: per connection, and in the daemon.
  std::size_t max_commands_per_connection = 256;
  std::size_t max_running_commands = 4096;
  std::size_t max_jobs = 10'000;
  // A job's slot noticed later than this counts as missed (the catch-up policy applies).
  std::chrono::seconds missed_after{60};
};

// Parses each line, validates it against its row of the table and calls the row's handler.
// Invariants: every open peer has a Session context; a Session's subscriptions are removed from
// the registry before the Session is destroyed.
// Thread rule: the event loop thread only.
class Dispatcher final : public net::PeerHandler,
                         private core::JobPublisher,
                         private broker::BrokerListener {
 public:
  // `tokens`, `methods` and `jobs` must outlive the dispatcher. `methods` may be null (a photon
  // with no methods: `command` is refused); `jobs` may be null (jobs are then kept in memory only).
  Dispatcher(DispatcherOptions options, const Clock& clock, DaemonControl& control,
             core::TokenAllocator& tokens, core::MethodHost* methods = nullptr,
             core::JobPersistence* jobs = nullptr);
  ~Dispatcher() override;

  void on_open(net::Peer& peer) override;
  // Serves one request line. Throws net::RequestFailed, after answering the peer with an error,
  // if serving it threw (out of memory, a bug).
  void on_line(net::Peer& peer, std::string_view line) override;
  void on_close(net::Peer& peer) override;

  // The time asked for with DaemonControl::wake_at has come: expire leases, end waits, give up
  // on unanswered prompts.
  void on_timer();

  // Whether any client holds state that should keep the daemon alive (for the idle timeout).
  std::size_t open_sessions() const { return open_sessions_; }
  std::size_t held_locks() const { return locks_->held(); }
  std::size_t running_commands() const { return running_commands_; }
  // The cron jobs (the daemon restores them from its store at start).
  core::Scheduler& scheduler() { return scheduler_; }
  // Where job events, webhook events and their methods' channel emits are published.
  core::JobPublisher& publisher() { return *this; }
  // Joins this daemon to the other daemons of its photon (before any connection opens): publishes
  // are forwarded, locks and job history are the broker's. `tokens` (the fencing-token mark the
  // broker's tokens are covered by before a reply carries them) and `broker` must outlive the
  // dispatcher.
  void set_broker(broker::Broker& broker, core::TokenMark& tokens);

  // Told of every channel message published, after its delivery, with its id (the N of "ch_N")
  // and its line: the UI keeps recent ones for event streams that reconnect. With a tap, the line
  // is built even when nobody receives it.
  using MessageTap =
      std::function<void(std::uint64_t id, std::string_view channel, const SharedBytes& line)>;
  void set_message_tap(MessageTap tap) { message_tap_ = std::move(tap); }

 private:
  class Session;
  class CommandCall;
  friend class CommandCall;
  using Handler = void (Dispatcher::*)(Session&, const protocol::Request&);
  struct Route {
    protocol::RequestType type;
    Handler handler;
    std::span<const protocol::Field> required;
    std::span<const protocol::Field> optional;
  };
  static const Route& route_for(protocol::RequestType type);

  void handle_ping(Session& session, const protocol::Request& request);
  void handle_shutdown(Session& session, const protocol::Request& request);
  void handle_status(Session& session, const protocol::Request& request);
  void handle_subscribe(Session& session, const protocol::Request& request);
  void handle_unsubscribe(Session& session, const protocol::Request& request);
  void handle_publish(Session& session, const protocol::Request& request);
  void handle_lock(Session& session, const protocol::Request& request);
  void handle_unlock(Session& session, const protocol::Request& request);
  void handle_list_locks(Session& session, const protocol::Request& request);
  void handle_query_lock(Session& session, const protocol::Request& request);
  void handle_command(Session& session, const protocol::Request& request);
  void handle_prompt_response(Session& session, const protocol::Request& request);
  void handle_list_methods(Session& session, const protocol::Request& request);
  void handle_schedule(Session& session, const protocol::Request& request);
  void handle_unschedule(Session& session, const protocol::Request& request);
  void handle_list_jobs(Session& session, const protocol::Request& request);
  void handle_job_history(Session& session, const protocol::Request& request);
  void handle_run_job(Session& session, const protocol::Request& request);
  // JobPublisher: job events and jobs' channel emits, to every subscriber.
  void publish(const std::string& channel, const boost::json::value& message) override;
  // BrokerListener: what the other daemons of the photon did.
  void remote_message(std::string_view channel, const boost::json::value& message) override;
  void lock_released(std::string_view name) override;
  void shared_state_changed() override;
  // Tells the daemon when the lock table, a prompt or a job next needs on_timer().
  void reschedule();
  // Publishes `message` on `channel`: to the photon's other daemons (with a broker), and to every
  // matching subscriber here but `exclude` (may be null). Returns the number of deliveries here.
  std::size_t publish_message(std::string_view channel, const core::Subscriber* exclude,
                              const boost::json::value& message);
  // The local half: the line is built once, only if someone receives it (or the tap wants it).
  std::size_t deliver_locally(std::string_view channel, const core::Subscriber* exclude,
                              const boost::json::value& message);

  void serve_line(net::Peer& peer, std::string_view line);
  // Queues `line` to connection `connection`; false when it has closed.
  bool send_to(core::ConnectionId connection, std::string line);

  // What a method's emit, prompt and end do (CommandCall forwards here).
  void command_emitted(CommandCall& call, boost::json::object event);
  void command_prompted(CommandCall& call, boost::json::object prompt, core::PromptAnswer answer);
  void command_finished(CommandCall& call, core::CallOutcome outcome);
  // Ends the wait of `call`'s prompt, handing `answer` to the method.
  void answer_prompt(CommandCall& call, std::optional<boost::json::value> answer);

  DispatcherOptions options_;
  const Clock& clock_;
  DaemonControl& control_;
  protocol::RequestParser parser_;
  // The request being served, named in the log and in the error if serving it throws.
  std::optional<protocol::RequestType> serving_type_;
  std::string serving_id_;
  core::ChannelRegistry channels_;
  // The local table's service, or with a broker the broker's.
  std::unique_ptr<core::LockService> locks_;
  std::chrono::steady_clock::time_point started_steady_;
  std::chrono::system_clock::time_point started_system_;
  std::uint64_t next_message_sequence_ = 1;
  std::size_t open_sessions_ = 0;
  core::ConnectionId next_connection_id_ = 1;
  core::MethodHost* methods_;
  std::size_t running_commands_ = 0;
  // Prompts waiting for an answer, by deadline (the call keeps its own entry's iterator).
  std::multimap<std::chrono::steady_clock::time_point, CommandCall*> prompt_deadlines_;
  // Jobs kept in memory only, when the daemon gives no store.
  class MemoryOnlyJobs final : public core::JobPersistence {
    void save_job(const core::JobState&) override {}
    void delete_job(const std::string&) override {}
    void update_record(const core::JobState&, const core::RecordUpdate&) override {}
    void save_run(const core::JobRun&) override {}
  };
  MemoryOnlyJobs memory_only_jobs_;
  core::Scheduler scheduler_;
  // With a broker: its locks replace locks_, and sessions are found by id for its late answers.
  broker::Broker* broker_ = nullptr;
  broker::BrokerLockService* shared_locks_ = nullptr;
  std::unordered_map<core::ConnectionId, Session*> sessions_;
  // Calls hold a weak reference: a method still running in its host when the dispatcher is gone
  // (daemon teardown) then reports to nobody.
  MessageTap message_tap_;
  std::shared_ptr<Dispatcher*> self_ = std::make_shared<Dispatcher*>(this);
};

}  // namespace photon::daemon
