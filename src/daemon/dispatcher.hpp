// The dispatch table: every request type, the fields it requires and may carry, and the function
// that serves it. This file is the index of the protocol; adding a request type is one row and
// one handler. Handlers parse, ask a service (daemon/services.hpp) and write the reply.
#pragma once

#include "common/clock.hpp"
#include "common/defaults.hpp"
#include "daemon/method_calls.hpp"
#include "daemon/services.hpp"
#include "daemon/test_clock.hpp"
#include "net/peer.hpp"
#include "protocol/request.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace photon::daemon {

// Counters the transport keeps, shown by `status`.
struct TransportCounters {
  std::uint64_t dropped_slow_consumers = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t accept_pauses = 0;  // the Unix socket's, out of descriptors or memory
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
  // Whether the daemon runs on a test clock (photond --test-clock, a test build's option):
  // `test_clock` requests move it. A daemon on the system clock serves no such request.
  virtual bool has_test_clock() const { return false; }
  // Moves the test clock, then does everything due at the new time before returning (leases,
  // waiters, prompts, cron slots; the idle timeout is checked on the next turn). Only called
  // when has_test_clock().
  virtual void move_test_clock(const ClockMove& /*move*/) {}
};

struct DispatcherOptions {
  std::size_t max_json_depth = defaults::kMaxJsonDepth;
  // A resuming subscriber owed more than this is told refresh_needed instead: queued at once, the
  // replay would get its connection cut as a slow consumer, and every retry again.
  std::size_t max_replay_bytes = defaults::kOutputHardBytes / 2;
};

// Parses each line, finds its row of the table, validates the fields the row names and calls the
// row's handler.
// Invariants: every open peer has a Session context, found by its connection id in sessions_; a
// Session's subscriptions, lock waits and commands leave the services before it is destroyed.
// Thread rule: the event loop thread only.
class Dispatcher final : public net::PeerHandler, private CallListener {
 public:
  // `services` and `control` must outlive the dispatcher; it tells `control` when the services
  // next need on_timer().
  Dispatcher(DispatcherOptions options, Services& services, DaemonControl& control);
  ~Dispatcher() override;

  void on_open(net::Peer& peer) override;
  // Serves one request line. Throws net::RequestFailed, after answering the peer with an error,
  // if serving it threw (out of memory, a bug).
  void on_line(net::Peer& peer, std::string_view line) override;
  void on_close(net::Peer& peer) override;
  std::string refusal_line(net::TransportRefusal reason, std::uint64_t value) const override;

  // The time asked for with DaemonControl::wake_at has come: the services do what is due.
  void on_timer();

  // Connections open now.
  std::size_t open_sessions() const { return sessions_.size(); }
  // Connections open now other than those that only move a test clock (the idle timeout waits
  // for none: a test that moves the clock past it is not a client keeping the daemon busy).
  std::size_t open_clients() const { return sessions_.size() - clock_controllers_; }

  // The wire names of the request types, in the table's order.
  static std::span<const std::string_view> request_types();

 private:
  class Session;
  using Handler = void (Dispatcher::*)(Session&, const protocol::Request&);
  // One row of the table.
  struct Route {
    std::string_view name;
    Handler handler;
    std::span<const protocol::Field> required;
    std::span<const protocol::Field> optional;
  };
  static const Route kRoutes[];
  static const Route* route_for(std::string_view name);

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
  void handle_get_events_since(Session& session, const protocol::Request& request);
  // What the window keeps on `channel` (a channel or pattern) after the request's lastEventId
  // (all it keeps without one); a gap when it cannot show that nothing was missed.
  core::ReplayedMessages missed_since(const protocol::Request& request,
                                      std::string_view channel) const;
  void handle_test_clock(Session& session, const protocol::Request& request);

  // CallListener: a command's events, to its caller.
  void call_emitted(core::ConnectionId caller, std::string_view id,
                    const boost::json::object& event) override;
  void call_emit_refused(core::ConnectionId caller, std::string_view id, boost::json::object event,
                         std::string_view problem) override;
  void call_prompted(core::ConnectionId caller, std::string_view id,
                     const boost::json::object& prompt) override;
  void call_finished(core::ConnectionId caller, std::string_view id,
                     const core::CallOutcome& outcome) override;

  // Tells the daemon when the services next need on_timer().
  void reschedule();
  void serve_line(net::Peer& peer, std::string_view line);
  // Queues `line` to connection `connection`; false when it has closed.
  bool send_to(core::ConnectionId connection, std::string line);

  DispatcherOptions options_;
  Services& services_;
  const Clock& clock_;
  DaemonControl& control_;
  protocol::RequestParser parser_;
  // The request being served, named in the log and in the error if serving it throws.
  std::string_view serving_type_;
  std::string serving_id_;
  std::chrono::steady_clock::time_point started_steady_;
  std::chrono::system_clock::time_point started_system_;
  core::ConnectionId next_connection_id_ = 1;
  // Open connections by id, for answers that come later (a lock granted, a broker's answer, a
  // command's events).
  std::unordered_map<core::ConnectionId, Session*> sessions_;
  // Sessions that have sent a test_clock request (see open_clients()).
  std::size_t clock_controllers_ = 0;
};

}  // namespace photon::daemon
