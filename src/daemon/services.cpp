// The services' wiring: publishing with its forwarding and tap, the lock service chosen by the
// broker's presence, and the deadline they share.
#include "daemon/services.hpp"

#include "locks/local_lock_service.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"

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
                                      const boost::json::value& message) {
  if (broker_ != nullptr) broker_->forward(channel, message);
  return deliver_locally(channel, exclude, message);
}

void Services::publish(const std::string& channel, const boost::json::value& message) {
  publish(channel, nullptr, message);
}

Services::Published Services::deliver_locally(std::string_view channel,
                                              const core::Subscriber* exclude,
                                              const boost::json::value& message) {
  // Built whether or not anyone receives it: a subscriber away now resumes from the window.
  const std::uint64_t sequence = event_ids_.issue();
  std::string id = event_ids_.id_of(sequence);
  const SharedBytes line =
      make_shared_bytes(protocol::channel_message_line(sequence, channel, id, message));
  const std::size_t delivered = channels_.publish(channel, exclude, [&] { return line; });
  replay_window_.record(sequence, channel, line, clock_.steady());
  return {delivered, std::move(id)};
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
