// A channel message in photon-core's broker form ({"channel","event","data","timestamp","source"},
// what its Redis and HTTP brokers carry) and back: the one mapping rule the Redis bridge and the
// HTTP broker endpoint share (docs/scaling.md, "Sharing channels with TypeScript photons").
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace photon::core {

// Who writes a photon-core message, for the fields photon-core fills in itself.
struct PhotonCoreSender {
  std::string_view source;      // `source` when the message names none (the photon's name)
  std::int64_t now_millis = 0;  // `timestamp` when the message carries no number there
  // Added as "photond": a daemon's mark on what it publishes to Redis, so that the daemons of its
  // photon, which have the message already, drop it when it comes back. Empty: no mark (HTTP).
  std::string_view mark;
};

// The photon-core text of `message`, published by photond on `channel`. As photon-core's own
// DaemonBroker reads a daemon's channel_message: `event` is the message's string `event` (else
// "message"), `data` its `data` member when it has one (else the whole message), `timestamp` and
// `source` its own when it has them (a number, a string), else the sender's. So a message that
// came from photon-core in this form goes back unchanged.
std::string photon_core_text(std::string_view channel, const boost::json::value& message,
                             const PhotonCoreSender& sender);

// The photond message for `payload`, a photon-core message that arrived on `channel`: an object is
// delivered as it is (what photon-core's DaemonBroker publishes to a daemon); any other JSON value
// becomes {"channel":CHANNEL,"event":"message","data":VALUE}.
boost::json::value photond_message_of(std::string_view channel, boost::json::value payload);

// Whether `payload` (a parsed photon-core message) carries a mark that begins with `mark_prefix`.
bool has_mark_prefix(const boost::json::value& payload, std::string_view mark_prefix);

}  // namespace photon::core
