// The dispatch table: every request type, the fields it requires and may carry, and the function
// that serves it. This file is the index of the protocol; adding a request type is one row and
// one handler.
#pragma once

#include "common/clock.hpp"
#include "core/channel_registry.hpp"
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
};

struct DispatcherOptions {
  std::string photon_name;
  std::size_t max_json_depth = 64;
  std::size_t max_subscriptions = 4096;
};

// Parses each line, validates it against its row of the table and calls the row's handler.
// Invariants: every open peer has a Session context; a Session's subscriptions are removed from
// the registry before the Session is destroyed.
// Thread rule: the event loop thread only.
class Dispatcher final : public net::PeerHandler {
 public:
  Dispatcher(DispatcherOptions options, const Clock& clock, DaemonControl& control);

  void on_open(net::Peer& peer) override;
  void on_line(net::Peer& peer, std::string_view line) override;
  void on_close(net::Peer& peer) override;

  // Whether any client holds state that should keep the daemon alive (for the idle timeout).
  std::size_t open_sessions() const { return open_sessions_; }
  const core::ChannelRegistry& channels() const { return channels_; }

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
  void handle_not_supported(Session& session, const protocol::Request& request);

  DispatcherOptions options_;
  const Clock& clock_;
  DaemonControl& control_;
  protocol::RequestParser parser_;
  core::ChannelRegistry channels_;
  std::chrono::steady_clock::time_point started_steady_;
  std::chrono::system_clock::time_point started_system_;
  std::uint64_t next_message_sequence_ = 1;
  std::size_t open_sessions_ = 0;
};

}  // namespace photon::daemon
