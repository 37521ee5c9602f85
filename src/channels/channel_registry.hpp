// Pub/sub channels: who is subscribed to what, wildcard matching, and fan-out of one serialized
// message to every matching subscriber.
#pragma once

#include "common/shared_bytes.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace photon::core {

using photon::SharedBytes;

// Something that receives channel messages: in the daemon, one client connection.
// deliver() must not call back into the ChannelRegistry (a subscriber that must go away because
// of a delivery schedules that for later); it is called on the registry's thread.
class Subscriber {
 public:
  virtual void deliver(const SharedBytes& line) = 0;

 protected:
  Subscriber() = default;
  ~Subscriber() = default;
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

 private:
  friend class ChannelRegistry;
  // The last publish this subscriber was given; makes delivery once-per-publish without a set.
  std::uint64_t last_publish_ = 0;
};

struct ChannelCount {
  std::string channel;  // as subscribed: an exact name, or a pattern ending in '*'
  std::size_t subscribers;
  // Publishes that matched it since it was first subscribed (a dashboard's message rate).
  std::uint64_t messages = 0;
};

// The subscriptions of every subscriber, indexed for publish.
//
// Invariants: a (subscriber, channel) pair is stored at most once; a subscriber appears in the
// index of each of its channels exactly once; pattern_lengths_ counts the patterns per prefix
// length, so publish probes only lengths that exist.
// Thread rule: not thread-safe; the daemon's event loop thread owns it.
class ChannelRegistry {
 public:
  enum class SubscribeOutcome { kAdded, kAlreadySubscribed, kLimitReached, kTotalLimitReached };

  // `max_total`: subscriptions of all subscribers together.
  explicit ChannelRegistry(std::size_t max_total = 1'000'000) : max_total_(max_total) {}

  // Subscribes `subscriber` to `channel` (a trailing '*' makes it a prefix pattern; a bare '*'
  // matches everything). kLimitReached when the subscriber already holds `limit` subscriptions,
  // kTotalLimitReached when all subscribers together hold max_total.
  SubscribeOutcome subscribe(Subscriber& subscriber, std::string_view channel, std::size_t limit);

  // Returns whether the subscription existed.
  bool unsubscribe(Subscriber& subscriber, std::string_view channel);

  // Drops every subscription of `subscriber`; call before it is destroyed.
  void unsubscribe_all(Subscriber& subscriber);

  // Delivers the line built by `make_line` (called at most once, and only when there is a
  // recipient) to every subscriber other than `publisher` with a subscription matching `channel`,
  // once each however many of its subscriptions match. Returns the number of recipients.
  std::size_t publish(std::string_view channel, const Subscriber* publisher,
                      const std::function<SharedBytes()>& make_line);

  std::size_t subscription_count(const Subscriber& subscriber) const;

  // Every subscribed channel and pattern with its number of subscribers, sorted by name.
  std::vector<ChannelCount> channel_counts() const;

  std::uint64_t published() const { return published_; }
  std::uint64_t delivered() const { return delivered_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };
  struct Entry {
    std::vector<Subscriber*> subscribers;
    std::uint64_t messages = 0;
  };
  using Index = std::unordered_map<std::string, Entry, StringHash, std::equal_to<>>;

  static bool is_pattern(std::string_view channel) {
    return !channel.empty() && channel.back() == '*';
  }
  void remove_from_index(Subscriber& subscriber, std::string_view channel);

  Index exact_;
  Index patterns_;  // keyed by the prefix, without the '*'
  std::map<std::size_t, std::size_t> pattern_lengths_;
  std::unordered_map<const Subscriber*, std::vector<std::string>> subscriptions_;
  std::size_t max_total_;
  std::size_t total_ = 0;
  std::uint64_t publish_round_ = 0;
  std::uint64_t published_ = 0;
  std::uint64_t delivered_ = 0;
};

}  // namespace photon::core
