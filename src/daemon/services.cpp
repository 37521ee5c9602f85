// The services' wiring: publishing with its forwarding and tap, the lock service chosen by the
// broker's presence, and the deadline they share.
#include "daemon/services.hpp"

#include "common/defaults.hpp"
#include "locks/local_lock_service.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace photon::daemon {

Services::Services(ServiceOptions options, const Clock& clock, core::TokenAllocator& tokens,
                   core::MethodHost* methods, core::JobPersistence* jobs)
    : options_(std::move(options)),
      clock_(clock),
      methods_(methods),
      channels_(options_.max_total_subscriptions),
      event_ids_(options_.epoch),
      replay_window_({.messages = options_.replay_messages,
                      .bytes = options_.replay_bytes,
                      .channel_messages = options_.replay_channel_messages,
                      .channel_bytes = options_.replay_channel_bytes,
                      .age = options_.replay_age}),
      locks_(std::make_unique<core::LocalLockService>(clock, tokens, options_.lock_limits)),
      scheduler_({.photon_name = options_.photon_name,
                  .max_jobs = options_.max_jobs,
                  .missed_after = options_.missed_after},
                 clock, methods, jobs != nullptr ? *jobs : memory_only_jobs_, *this),
      calls_(clock, methods,
             {.per_connection = options_.max_commands_per_connection,
              .in_daemon = options_.max_running_commands,
              .prompt_timeout = options_.prompt_timeout},
             [this](std::string_view channel, const core::Subscriber* exclude,
                    const boost::json::value& message) { publish(channel, exclude, message); }) {}

Services::~Services() = default;

void Services::set_broker(broker::Broker& broker, core::TokenMark& tokens) {
  broker_ = &broker;
  broker.set_listener(this);
  auto shared = std::make_unique<broker::BrokerLockService>(
      clock_, broker, tokens, options_.lock_limits, [this] { changed(); });
  shared_locks_ = shared.get();
  locks_ = std::move(shared);
}

Services::Published Services::publish(std::string_view channel, const core::Subscriber* exclude,
                                      const boost::json::value& message, bool refusable) {
  Published published = deliver_locally(channel, exclude, message, refusable);
  if (broker_ != nullptr && !published.refused) broker_->forward(channel, message);
  return published;
}

bool Services::persistent(std::string_view channel) const {
  return std::any_of(
      options_.persist.begin(), options_.persist.end(),
      [&](const std::string& pattern) { return core::subscription_matches(pattern, channel); });
}

void Services::restore(const std::vector<KeptMessage>& messages) {
  boost::json::parse_options options;
  options.max_depth = defaults::kMaxJsonDepthLimit;  // the parser does not recurse
  const auto now_steady = clock_.steady();
  const auto now_ms = epoch_millis(clock_.system());
  for (const KeptMessage& kept : messages) {
    boost::system::error_code ec;
    const boost::json::value message = boost::json::parse(kept.message_json, ec, {}, options);
    if (ec) continue;  // written by this program: damaged, so not this message any more
    const std::uint64_t sequence = event_ids_.carry(kept.event_id);
    // A fresh `ch_` id (unique in this run) and the message's own event id.
    const SharedBytes line = make_shared_bytes(
        protocol::channel_message_line(sequence, kept.channel, kept.event_id, message));
    const auto age = std::chrono::milliseconds(std::max<std::int64_t>(now_ms - kept.at_ms, 0));
    replay_window_.record(sequence, kept.channel, line, now_steady - age);
  }
}

void Services::when_written(std::uint64_t write, std::function<void(bool)> then) {
  awaiting_writes_.emplace_back(write, std::move(then));
}

void Services::writes_done(std::uint64_t done, bool written) {
  while (!awaiting_writes_.empty() && awaiting_writes_.front().first <= done) {
    auto then = std::move(awaiting_writes_.front().second);
    awaiting_writes_.pop_front();
    then(written);
  }
}

void Services::publish(const std::string& channel, const boost::json::value& message) {
  publish(channel, nullptr, message);
}

Services::Published Services::deliver_locally(std::string_view channel,
                                              const core::Subscriber* exclude,
                                              const boost::json::value& message, bool refusable) {
  // Built whether or not anyone receives it: a subscriber away now resumes from the window.
  const std::uint64_t sequence = event_ids_.issue();
  std::string id = event_ids_.id_of(sequence);
  std::optional<std::uint64_t> write;
  if (channel_store_ != nullptr && persistent(channel)) {
    // Queued for the disk before anyone receives it: a message the store refuses goes nowhere.
    write = channel_store_->save(id, channel, boost::json::serialize(message),
                                 epoch_millis(clock_.system()), refusable);
    if (!write) {
      return {.event_id = std::move(id),
              .refused =
                  Refused{RefusalCode::kPersistBacklogFull,
                          {std::string(channel), std::to_string(channel_store_->max_waiting())}}};
    }
  }
  const SharedBytes line =
      make_shared_bytes(protocol::channel_message_line(sequence, channel, id, message));
  const std::size_t delivered = channels_.publish(channel, exclude, [&] { return line; });
  replay_window_.record(sequence, channel, line, clock_.steady());
  return {.delivered = delivered, .event_id = std::move(id), .write = write};
}

bool Services::remote_message(std::string_view channel, const boost::json::value& message) {
  // The channel name is checked like a client's: Redis is shared ground.
  if (protocol::channel_name_error(channel, false)) return false;
  deliver_locally(channel, nullptr, message);
  return true;
}

void Services::lock_released(std::string_view name) {
  if (shared_locks_ != nullptr) shared_locks_->lock_released(name);
  changed();
}

void Services::shared_state_changed() { changed(); }

void Services::connection_closed(core::ConnectionId connection, core::Subscriber& subscriber) {
  channels_.unsubscribe_all(subscriber);
  locks_->connection_closed(connection);
  calls_.connection_closed(connection);
}

void Services::expire_due() {
  locks_->expire_due();
  scheduler_.tick();
  calls_.expire_due();
}

std::optional<std::chrono::steady_clock::time_point> Services::next_deadline() const {
  std::optional<std::chrono::steady_clock::time_point> next = locks_->next_deadline();
  const auto earlier = [&next](std::optional<std::chrono::steady_clock::time_point> when) {
    if (when && (!next || *when < *next)) next = when;
  };
  earlier(calls_.next_deadline());
  earlier(scheduler_.next_wake());
  return next;
}

}  // namespace photon::daemon
