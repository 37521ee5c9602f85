// The replay window every transport resumes from (see replay_window.hpp).
#include "channels/replay_window.hpp"

#include <algorithm>
#include <iterator>
#include <optional>

namespace photon::core {

ReplayWindow::ReplayWindow(ReplayLimits limits) : limits_(limits) {}

void ReplayWindow::index(const std::string& name, const Channel& channel) {
  const std::uint64_t age = ~channel.messages.front().id;
  by_count_.emplace(channel.messages.size(), age, &name);
  by_bytes_.emplace(channel.bytes, age, &name);
}

ReplayWindow::Keys ReplayWindow::keys(const std::string& name, const Channel& channel) {
  const std::uint64_t age = ~channel.messages.front().id;
  return {{channel.messages.size(), age, &name}, {channel.bytes, age, &name}};
}

void ReplayWindow::reindex(const Keys& from, const Keys& to) {
  // Every publish moves a channel in both orders (twice, once the window is full): the set nodes
  // are moved to their new keys rather than freed and allocated again.
  const auto move = [](LargestFirst& set, const Entry& old_key, const Entry& new_key) {
    auto node = set.extract(old_key);
    node.value() = new_key;
    set.insert(std::move(node));
  };
  move(by_count_, from.count, to.count);
  move(by_bytes_, from.bytes, to.bytes);
}

void ReplayWindow::record(std::uint64_t id, std::string_view channel_name, SharedBytes line,
                          TimePoint now) {
  if (limits_.messages == 0) {
    // Off (--replay-messages 0): what keeping and then giving up the message would leave, an
    // empty window that has lost everything up to `id`, without building a channel entry and its
    // index entries only to tear them down again on every publish.
    forgotten_unknown_up_to_ = std::max(forgotten_unknown_up_to_, id);
    return;
  }
  auto it = channels_.find(channel_name);
  std::optional<Keys> was_indexed;
  if (it == channels_.end()) {
    it = channels_.emplace(std::string(channel_name), Channel{}).first;
  } else if (it->second.messages.empty()) {
    forgotten_channels_.erase({it->second.forgotten_up_to, &it->first});
  } else {
    was_indexed = keys(it->first, it->second);
  }
  Channel& channel = it->second;
  const std::size_t size = cost(channel_name, line);
  channel.messages.push_back({id, std::move(line), now});
  channel.bytes += size;
  kept_ += 1;
  kept_bytes_ += size;
  // The channel's own bounds first: what it gives up for them, it has no share in the rest. It is
  // indexed once, after: a full channel's publish moves its two entries once, not twice. Its new
  // message is never expired, so only a message over the channel's bounds by itself empties it.
  const auto over_own_bounds = [&] {
    return channel.messages.size() > limits_.channel_messages ||
           channel.bytes > limits_.channel_bytes || expired(channel.messages.front().at, now);
  };
  while (channel.messages.size() > 1 && over_own_bounds()) drop_oldest(it->first, channel);
  if (was_indexed) {
    reindex(*was_indexed, keys(it->first, channel));
  } else {
    index(it->first, channel);
  }
  if (over_own_bounds()) forget_oldest_of(it);  // the channel keeps nothing (`it` may be invalid)
  while (kept_ > limits_.messages) forget_oldest(by_count_);
  while (kept_bytes_ > limits_.bytes) forget_oldest(by_bytes_);
}

void ReplayWindow::forget_oldest(const LargestFirst& largest_first) {
  forget_oldest_of(channels_.find(*std::get<2>(*largest_first.begin())));
}

void ReplayWindow::drop_oldest(const std::string& name, Channel& channel) {
  const Kept& oldest = channel.messages.front();
  const std::size_t size = cost(name, oldest.line);
  channel.forgotten_up_to = oldest.id;
  channel.bytes -= size;
  channel.messages.pop_front();
  kept_ -= 1;
  kept_bytes_ -= size;
}

void ReplayWindow::forget_oldest_of(Channels::iterator it) {
  const std::string& name = it->first;
  Channel& channel = it->second;
  const Keys was = keys(name, channel);
  drop_oldest(name, channel);
  if (!channel.messages.empty()) {
    reindex(was, keys(name, channel));
    return;
  }
  by_count_.erase(was.count);
  by_bytes_.erase(was.bytes);
  // Nothing kept: the channel stays known by name (a stream on it learns of its gap), within a
  // bound; beyond it the oldest name goes and any stream reconnecting from before is told of a gap.
  forgotten_channels_.emplace(channel.forgotten_up_to, &name);
  if (forgotten_channels_.size() > limits_.messages) {
    const auto oldest_forgotten = forgotten_channels_.begin();
    forgotten_unknown_up_to_ = std::max(forgotten_unknown_up_to_, oldest_forgotten->first);
    const auto gone = channels_.find(*oldest_forgotten->second);
    forgotten_channels_.erase(oldest_forgotten);
    channels_.erase(gone);
  }
}

ReplayedMessages ReplayWindow::since(std::uint64_t last_id,
                                     const std::function<bool(std::string_view)>& matches,
                                     TimePoint now) const {
  ReplayedMessages replay;
  replay.gap = forgotten_unknown_up_to_ > last_id;
  std::vector<const Kept*> owed;
  for (const auto& [name, channel] : channels_) {
    if (!matches(name)) continue;
    if (channel.forgotten_up_to > last_id) replay.gap = true;
    // Messages past the age bound are kept until their channel publishes again (the count and
    // byte bounds hold meanwhile), but count as forgotten from the moment they expire.
    const auto live = std::find_if(channel.messages.begin(), channel.messages.end(),
                                   [&](const Kept& kept) { return !expired(kept.at, now); });
    if (live != channel.messages.begin() && std::prev(live)->id > last_id) replay.gap = true;
    const auto first =
        std::upper_bound(live, channel.messages.end(), last_id,
                         [](std::uint64_t id, const Kept& kept) { return id < kept.id; });
    for (auto message = first; message != channel.messages.end(); ++message) {
      owed.push_back(&*message);
    }
  }
  std::sort(owed.begin(), owed.end(), [](const Kept* a, const Kept* b) { return a->id < b->id; });
  replay.lines.reserve(owed.size());
  for (const Kept* kept : owed) replay.lines.push_back(kept->line);
  return replay;
}

}  // namespace photon::core
