// The recent channel messages kept for subscribers that come back (a socket client's lastEventId,
// an event stream's Last-Event-ID): bounded by count and bytes in all and per channel, and by age,
// and shared fairly among channels, so a busy channel cannot push a quiet channel's messages out of
// the window.
#pragma once

#include "common/shared_bytes.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace photon::core {

// Whether a message on `channel` is for `subscription`: the same channel, or a pattern whose part
// before its trailing '*' begins the channel (the rule the ChannelRegistry's index implements).
inline bool subscription_matches(std::string_view subscription, std::string_view channel) {
  return subscription.ends_with('*')
             ? channel.starts_with(subscription.substr(0, subscription.size() - 1))
             : channel == subscription;
}

// Whether every channel `subscription` (a channel or pattern) can match is matched by one of
// `patterns`: a channel by a pattern that matches it, a pattern by a pattern it begins with.
inline bool patterns_cover(const std::vector<std::string>& patterns,
                           std::string_view subscription) {
  for (const std::string& pattern : patterns) {
    if (!subscription.ends_with('*')
            ? subscription_matches(pattern, subscription)
            : pattern.ends_with('*') && subscription.starts_with(std::string_view(pattern).substr(
                                            0, pattern.size() - 1))) {
      return true;
    }
  }
  return false;
}

// What a reconnecting stream is owed.
struct ReplayedMessages {
  // Some message after the stream's last id on one of its channels is no longer kept (or, for
  // channels long gone from the window, may have been): the client should reload its state.
  bool gap = false;
  std::vector<SharedBytes> lines;  // oldest first
};

// What the window keeps at most.
struct ReplayLimits {
  std::size_t messages;  // in all channels
  std::size_t bytes;
  std::size_t channel_messages;  // in one channel
  std::size_t channel_bytes;
  // A message older than this is not replayed (zero: no age bound).
  std::chrono::milliseconds age{0};
};

// The bytes `replay` would queue to its client.
inline std::size_t replay_bytes(const ReplayedMessages& replay) {
  std::size_t bytes = 0;
  for (const SharedBytes& line : replay.lines) bytes += line->size();
  return bytes;
}

// Invariants: every kept channel has at least one message and one entry in by_count_ and
// by_bytes_; a channel whose last message went is a "forgotten channel" (kept by name, with the
// newest id it lost) until more than max_messages of those pile up; kept_ and kept_bytes_ are
// the sums over channels, at most max_messages and max_bytes after each record().
// Thread rule: one thread (the event loop).
class ReplayWindow {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit ReplayWindow(ReplayLimits limits);
  // Bounded in all only, by count and bytes, with no age bound.
  ReplayWindow(std::size_t max_messages, std::size_t max_bytes)
      : ReplayWindow(ReplayLimits{max_messages, max_bytes, max_messages, max_bytes}) {}

  // Keeps a message published at `now` (ids and times increase from call to call). Over its
  // channel's bounds, or with expired messages, the channel gives up its oldest; over a bound in
  // all, the channel keeping the most messages (or bytes; of equals, the one with the oldest
  // message) gives up its oldest, until within them again.
  void record(std::uint64_t id, std::string_view channel, SharedBytes line, TimePoint now = {});

  // The kept messages with an id above `last_id` on channels `matches` accepts, oldest first, as
  // of `now` (a message older than the age bound counts as forgotten).
  ReplayedMessages since(std::uint64_t last_id,
                         const std::function<bool(std::string_view channel)>& matches,
                         TimePoint now = {}) const;

  std::size_t messages() const { return kept_; }
  std::size_t max_messages() const { return limits_.messages; }
  std::size_t bytes() const { return kept_bytes_; }
  const ReplayLimits& limits() const { return limits_; }

 private:
  struct Kept {
    std::uint64_t id;
    SharedBytes line;
    TimePoint at;
  };
  struct Channel {
    std::deque<Kept> messages;
    std::size_t bytes = 0;
    std::uint64_t forgotten_up_to = 0;  // the newest id of this channel no longer kept
  };
  // (a size, ~the id of the channel's oldest kept message, the channel's name): ordered largest
  // first, ties going to the channel holding the oldest message.
  using Entry = std::tuple<std::size_t, std::uint64_t, const std::string*>;
  using LargestFirst = std::set<Entry, std::greater<>>;
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const {
      return std::hash<std::string_view>{}(name);
    }
  };

  using Channels = std::unordered_map<std::string, Channel, NameHash, std::equal_to<>>;

  static std::size_t cost(std::string_view channel, const SharedBytes& line) {
    return channel.size() + line->size();
  }
  // The channel first in `largest_first` gives up its oldest message.
  void forget_oldest(const LargestFirst& largest_first);
  // The channel gives up its oldest message (a channel left with none may be erased: `it` is then
  // invalid).
  void forget_oldest_of(Channels::iterator it);
  // The same, leaving the channel's entries in by_count_ and by_bytes_ under its former keys (the
  // caller moves them) and a channel left with none to the caller.
  void drop_oldest(const std::string& name, Channel& channel);
  // Whether a message kept at `at` is past the age bound at `now`.
  bool expired(TimePoint at, TimePoint now) const {
    return limits_.age.count() > 0 && now - at > limits_.age;
  }
  struct Keys {
    Entry count;
    Entry bytes;
  };
  static Keys keys(const std::string& name, const Channel& channel);
  void index(const std::string& name, const Channel& channel);
  // Moves a channel's two entries from the keys it had to the keys it has now.
  void reindex(const Keys& from, const Keys& to);

  ReplayLimits limits_;
  Channels channels_;
  // Kept channels by messages and by bytes, largest first: the next to give one up.
  LargestFirst by_count_;
  LargestFirst by_bytes_;
  // Channels with nothing kept, by the newest id they lost, oldest first.
  std::set<std::pair<std::uint64_t, const std::string*>> forgotten_channels_;
  // The newest id lost with a forgotten channel whose name went too: any stream may have missed it.
  std::uint64_t forgotten_unknown_up_to_ = 0;
  std::size_t kept_ = 0;
  std::size_t kept_bytes_ = 0;
};

}  // namespace photon::core
