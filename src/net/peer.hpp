// The narrow interface between the transport and the request handlers: a peer to send lines to,
// and a handler that is told of each peer's lines. Neither side knows the other's internals.
#pragma once

#include "common/shared_bytes.hpp"

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace photon::net {

// State a handler attaches to a peer (the dispatcher keeps its per-connection session here).
class PeerContext {
 public:
  virtual ~PeerContext() = default;
};

// One client connection as the handlers see it.
// Thread rule: the event loop thread only.
class Peer {
 public:
  virtual ~Peer() = default;

  // Queues a complete line (newline included) for writing; lines go out in the order queued.
  // May exceed the output bound, in which case the peer is closed later (never here, so callers
  // may be in the middle of a fan-out).
  virtual void send(SharedBytes line) = 0;
  virtual void send(std::string line) = 0;

  // Stops reading; closes once queued output is written.
  virtual void close_after_flush() = 0;

  PeerContext* context() const { return context_.get(); }
  void set_context(std::unique_ptr<PeerContext> context) { context_ = std::move(context); }

 private:
  std::unique_ptr<PeerContext> context_;
};

// Thrown by a handler's on_line when serving a request failed unexpectedly (out of memory, a bug)
// after it has answered the client with an error. The transport logs what() (which names the
// request type and size, never its content) and keeps the connection.
class RequestFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Why the transport answered a client itself, before or instead of the handler.
enum class TransportRefusal {
  kLineTooLong,         // `value`: the line bound in bytes; the connection then closes
  kNoCredentials,       // the peer's credentials could not be read; `value` unused
  kPermissionDenied,    // `value`: the peer's uid
  kTooManyConnections,  // `value`: the connection bound
  kBinaryMessage,       // a WebSocket binary message; `value` unused
};

// Implemented by the layer that serves requests (the daemon's dispatcher).
class PeerHandler {
 public:
  virtual ~PeerHandler() = default;
  // The line (newline included) that tells a client why the transport refused it: the handler
  // speaks the protocol, the transport only frames and sends bytes.
  virtual std::string refusal_line(TransportRefusal reason, std::uint64_t value) const = 0;
  virtual void on_open(Peer& peer) = 0;
  // One line without its terminator; never empty.
  virtual void on_line(Peer& peer, std::string_view line) = 0;
  // The peer is going away; it may not be sent to any more.
  virtual void on_close(Peer& peer) = 0;
};

}  // namespace photon::net
