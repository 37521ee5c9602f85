// Channel subscriptions and fan-out.
#include "channels/channel_registry.hpp"

#include <algorithm>

namespace photon::core {

ChannelRegistry::SubscribeOutcome ChannelRegistry::subscribe(Subscriber& subscriber,
                                                             std::string_view channel,
                                                             std::size_t limit) {
  std::vector<std::string>& owned = subscriptions_[&subscriber];
  if (std::find(owned.begin(), owned.end(), channel) != owned.end()) {
    return SubscribeOutcome::kAlreadySubscribed;
  }
  if (owned.size() >= limit || total_ >= max_total_) {
    const bool own_limit = owned.size() >= limit;
    if (owned.empty()) subscriptions_.erase(&subscriber);
    return own_limit ? SubscribeOutcome::kLimitReached : SubscribeOutcome::kTotalLimitReached;
  }
  owned.emplace_back(channel);
  ++total_;
  if (is_pattern(channel)) {
    std::string_view prefix = channel.substr(0, channel.size() - 1);
    auto [it, inserted] = patterns_.try_emplace(std::string(prefix));
    if (inserted) ++pattern_lengths_[prefix.size()];
    it->second.subscribers.push_back(&subscriber);
  } else {
    exact_[std::string(channel)].subscribers.push_back(&subscriber);
  }
  return SubscribeOutcome::kAdded;
}

bool ChannelRegistry::unsubscribe(Subscriber& subscriber, std::string_view channel) {
  auto found = subscriptions_.find(&subscriber);
  if (found == subscriptions_.end()) return false;
  std::vector<std::string>& owned = found->second;
  auto it = std::find(owned.begin(), owned.end(), channel);
  if (it == owned.end()) return false;
  remove_from_index(subscriber, channel);
  owned.erase(it);
  --total_;
  if (owned.empty()) subscriptions_.erase(found);
  return true;
}

void ChannelRegistry::unsubscribe_all(Subscriber& subscriber) {
  auto found = subscriptions_.find(&subscriber);
  if (found == subscriptions_.end()) return;
  for (const std::string& channel : found->second) remove_from_index(subscriber, channel);
  total_ -= found->second.size();
  subscriptions_.erase(found);
}

void ChannelRegistry::remove_from_index(Subscriber& subscriber, std::string_view channel) {
  const bool pattern = is_pattern(channel);
  Index& index = pattern ? patterns_ : exact_;
  std::string_view key = pattern ? channel.substr(0, channel.size() - 1) : channel;
  auto entry = index.find(key);
  if (entry == index.end()) return;
  std::vector<Subscriber*>& subscribers = entry->second.subscribers;
  subscribers.erase(std::find(subscribers.begin(), subscribers.end(), &subscriber));
  if (!subscribers.empty()) return;
  if (pattern) {
    auto length = pattern_lengths_.find(key.size());
    if (--length->second == 0) pattern_lengths_.erase(length);
  }
  index.erase(entry);
}

std::size_t ChannelRegistry::publish(std::string_view channel, const Subscriber* publisher,
                                     const std::function<SharedBytes()>& make_line) {
  ++published_;
  const std::uint64_t round = ++publish_round_;
  SharedBytes line;
  std::size_t recipients = 0;
  auto deliver_to = [&](Entry& entry) {
    ++entry.messages;
    for (Subscriber* subscriber : entry.subscribers) {
      if (subscriber == publisher || subscriber->last_publish_ == round) continue;
      subscriber->last_publish_ = round;
      if (!line) line = make_line();
      subscriber->deliver(line);
      ++recipients;
    }
  };
  if (auto exact = exact_.find(channel); exact != exact_.end()) deliver_to(exact->second);
  for (const auto& [length, count] : pattern_lengths_) {
    if (length > channel.size()) break;
    if (auto match = patterns_.find(channel.substr(0, length)); match != patterns_.end()) {
      deliver_to(match->second);
    }
  }
  delivered_ += recipients;
  return recipients;
}

std::size_t ChannelRegistry::subscription_count(const Subscriber& subscriber) const {
  auto found = subscriptions_.find(&subscriber);
  return found == subscriptions_.end() ? 0 : found->second.size();
}

std::vector<ChannelCount> ChannelRegistry::channel_counts() const {
  std::vector<ChannelCount> counts;
  counts.reserve(exact_.size() + patterns_.size());
  for (const auto& [channel, entry] : exact_) {
    counts.push_back({channel, entry.subscribers.size(), entry.messages});
  }
  for (const auto& [prefix, entry] : patterns_) {
    counts.push_back({prefix + "*", entry.subscribers.size(), entry.messages});
  }
  std::sort(counts.begin(), counts.end(),
            [](const ChannelCount& a, const ChannelCount& b) { return a.channel < b.channel; });
  return counts;
}

}  // namespace photon::core
