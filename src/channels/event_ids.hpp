// The event ids of channel messages: the daemon's epoch (drawn at start), '-', a sequence number
// counting every message published in this run. An id of an earlier run, of another daemon, or one
// not yet issued is never taken for one of this run's (docs/protocol.md, "Resuming").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace photon::core {

// Invariants: epoch_ is 12 lower-case hex digits (or what the constructor was given); every
// sequence below next_ has been issued.
// Thread rule: one thread (the event loop).
class EventIds {
 public:
  // `epoch`: empty to draw 48 random bits (a test's transcript fixes it).
  explicit EventIds(std::string epoch = {});

  // The next message's sequence; it counts as issued from now on.
  std::uint64_t issue() { return next_++; }
  // The id of message `sequence`.
  std::string id_of(std::uint64_t sequence) const;
  // The sequence `id` names, when it is one of this run's, already issued, or one of an earlier
  // run's carried over (carry); nothing for another epoch's, a future one, or text that is no id.
  std::optional<std::uint64_t> sequence_of(std::string_view id) const;

  // At start, before any issue() of this run's own: a message of an earlier run kept on disk gets
  // the next sequence of this run, and its old id names it.
  std::uint64_t carry(std::string id);
  // Sequences up to this one are earlier runs' messages (0: none).
  std::uint64_t carried_up_to() const { return carried_up_to_; }

  const std::string& epoch() const { return epoch_; }

 private:
  std::string epoch_;
  std::uint64_t next_ = 1;
  std::unordered_map<std::string, std::uint64_t> carried_;
  std::uint64_t carried_up_to_ = 0;
};

}  // namespace photon::core
