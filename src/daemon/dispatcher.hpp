// The dispatch table: every request type, the fields it requires and may carry, and the function
// that serves it. This file is the index of the protocol; adding a request type is one row and
// one handler.
#pragma once

#include "common/clock.hpp"
#include "core/channel_registry.hpp"
#include "core/lock_table.hpp"
#include "net/peer.hpp"
#include "protocol/request.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

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
};

struct DispatcherOptions {
  std::string photon_name;
  std::size_t max_json_depth = 64;
  std::size_t max_subscriptions = 4096;
  core::LockLimits lock_limits;
  std::size_t max_total_subscriptions = 1'000'000;
};

// Parses each line, validates it against its row of the table and calls the row's handler.
// Invariants: every open peer has a Session context; a Session's subscriptions are removed from
// the registry before the Session is destroyed.
// Thread rule: the event loop thread only.
class Dispatcher final : public net::PeerHandler {
 public:
  // `tokens` must outlive the dispatcher.
  Dispatcher(DispatcherOptions options, const Clock& clock, DaemonControl& control,
             core::TokenAllocator& tokens);

  void on_open(net::Peer& peer) override;
  void on_line(net::Peer& peer, std::string_view line) override;
  void on_close(net::Peer& peer) override;

  // The time asked for with DaemonControl::wake_at has come: expire leases, end waits.
  void on_timer();

  // Whether any client holds state that should keep the daemon alive (for the idle timeout).
  std::size_t open_sessions() const { return open_sessions_; }
  std::size_t held_locks() const { return locks_.size(); }

 private:
  class Session;
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
  void handle_not_supported(Session& session, const protocol::Request& request);
  // Tells the daemon when the lock table next needs on_timer().
  void reschedule_locks();

  DispatcherOptions options_;
  const Clock& clock_;
  DaemonControl& control_;
  protocol::RequestParser parser_;
  core::ChannelRegistry channels_;
  core::LockTable locks_;
  std::chrono::steady_clock::time_point started_steady_;
  std::chrono::system_clock::time_point started_system_;
  std::uint64_t next_message_sequence_ = 1;
  std::size_t open_sessions_ = 0;
  core::ConnectionId next_connection_id_ = 1;
};

}  // namespace photon::daemon
