// The daemon's services, wired once: channels and publishing (with the broker's forwarding and the
// UI's tap), the lock service, the cron scheduler, the running command calls, and the one deadline
// they share. The dispatcher serves requests with them; the daemon owns them.
#pragma once

#include "broker/broker.hpp"
#include "broker/broker_lock_service.hpp"
#include "channels/channel_registry.hpp"
#include "channels/event_ids.hpp"
#include "channels/replay_window.hpp"
#include "common/clock.hpp"
#include "common/defaults.hpp"
#include "common/refusal.hpp"
#include "common/shared_bytes.hpp"
#include "daemon/method_calls.hpp"
#include "jobs/scheduler.hpp"
#include "locks/lock_service.hpp"
#include "locks/token_mark.hpp"
#include "methods/method_host.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace photon::daemon {

struct ServiceOptions {
  std::string photon_name;
  // Persistent channels (--persist): channels or patterns whose messages are also kept on disk, so
  // that subscribers resume across a restart or a crash.
  std::vector<std::string> persist;
  std::size_t max_subscriptions = defaults::kMaxSubscriptions;  // per connection
  std::size_t max_total_subscriptions = defaults::kMaxTotalSubscriptions;
  // The replay window subscribers resume from (lastEventId, Last-Event-ID): messages and bytes
  // kept, in all channels together.
  std::size_t replay_messages = defaults::kReplayMessages;
  std::size_t replay_bytes = defaults::kReplayBytes;
  // ... in one channel, and for how long (zero: no age bound).
  std::size_t replay_channel_messages = defaults::kReplayChannelMessages;
  std::size_t replay_channel_bytes = defaults::kReplayChannelBytes;
  std::chrono::milliseconds replay_age = defaults::kReplayAge;
  // The event ids' epoch: empty to draw one at random (a test's transcript fixes it).
  std::string epoch;
  core::LockLimits lock_limits;
  // How long a method's prompt waits for its answer before the method gets none.
  std::chrono::milliseconds prompt_timeout = defaults::kPromptTimeout;
  // Commands running at once: per connection, and in the daemon.
  std::size_t max_commands_per_connection = 256;
  std::size_t max_running_commands = 4096;
  std::size_t max_jobs = 10'000;
  // A job's slot noticed later than this counts as missed (the catch-up policy applies).
  std::chrono::seconds missed_after = defaults::kMissedAfter;
};

// Where the messages of persistent channels are written (the daemon's SQLite store), off the loop.
class ChannelStore {
 public:
  virtual ~ChannelStore() = default;
  // Queues a message; its write number (Services::writes_done hears when it is written), or
  // nothing when `refusable` and max_waiting() messages wait already.
  virtual std::optional<std::uint64_t> save(std::string event_id, std::string_view channel,
                                            std::string message_json, std::int64_t at_ms,
                                            bool refusable) = 0;
  virtual std::size_t max_waiting() const = 0;
};

// A message of a persistent channel kept by an earlier run, as restore() takes it.
struct KeptMessage {
  std::string event_id;
  std::string channel;
  std::string message_json;
  std::int64_t at_ms = 0;  // published (epoch ms)
};

// Invariants: locks() is the local table's service until set_broker(), the broker's after;
// every service's next deadline is in next_deadline().
// Thread rule: the event loop thread only.
class Services final : private core::JobPublisher, private broker::BrokerListener {
 public:
  // `clock`, `tokens`, `methods` and `jobs` must outlive the services. `methods` may be null (a
  // photon with no methods: commands are refused); `jobs` may be null (jobs are then kept in
  // memory only).
  Services(ServiceOptions options, const Clock& clock, core::TokenAllocator& tokens,
           core::MethodHost* methods = nullptr, core::JobPersistence* jobs = nullptr);
  ~Services() override;
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  const ServiceOptions& options() const { return options_; }
  const Clock& clock() const { return clock_; }

  // Called when next_deadline() may have moved outside a request (a broker's answer, a prompt).
  void set_deadline_changed(std::function<void()> changed) { changed_ = std::move(changed); }

  // Joins this daemon to the other daemons of its photon (before any connection opens): publishes
  // are forwarded, locks and job history are the broker's. `tokens` (the fencing-token mark the
  // broker's tokens are covered by before an answer carries them) and `broker` must outlive the
  // services.
  void set_broker(broker::Broker& broker, core::TokenMark& tokens);
  // The broker, or null for a daemon alone.
  broker::Broker* broker() const { return broker_; }

  core::ChannelRegistry& channels() { return channels_; }
  // Every message published here, received or not, kept for subscribers that come back.
  const core::ReplayWindow& replay_window() const { return replay_window_; }

  struct Published {
    std::size_t delivered = 0;  // deliveries here
    std::string event_id;       // as its subscribers receive it
    // On a persistent channel: the store's write, which writes_done() reports.
    std::optional<std::uint64_t> write;
    // Not published (a persistent channel whose store has too much waiting).
    std::optional<Refused> refused;
  };
  // Publishes `message` on `channel`: to the photon's other daemons (with a broker), and to every
  // matching subscriber here but `exclude` (may be null). `refusable`: a client's publish, which
  // a persistent channel's full store refuses (other messages are kept whatever waits).
  Published publish(std::string_view channel, const core::Subscriber* exclude,
                    const boost::json::value& message, bool refusable = false);

  // Persistent channels: their store (before any connection opens; must outlive the services),
  // whether a channel is one, and the patterns.
  void set_channel_store(ChannelStore& store) { channel_store_ = &store; }
  bool persistent(std::string_view channel) const;
  const std::vector<std::string>& persist_patterns() const { return options_.persist; }
  // At start, before any publish: the persistent channels' messages of earlier runs, oldest first,
  // into the window under their own ids.
  void restore(const std::vector<KeptMessage>& messages);
  // Calls `then` once the store's write `write` is written (true) or has failed (false).
  void when_written(std::uint64_t write, std::function<void(bool written)> then);
  // The store wrote (or failed to write) every write up to `done`.
  void writes_done(std::uint64_t done, bool written);

  // The sequence an event id names, when it is one of this daemon's, already published; nothing
  // for another epoch's, a future one, or text that is no event id.
  std::optional<std::uint64_t> sequence_of(std::string_view event_id) const {
    return event_ids_.sequence_of(event_id);
  }
  // The ids of every message published here.
  const core::EventIds& event_ids() const { return event_ids_; }
  // Where job events, webhook events and their methods' channel emits are published.
  core::JobPublisher& publisher() { return *this; }

  core::LockService& locks() { return *locks_; }
  core::Scheduler& scheduler() { return scheduler_; }
  MethodCalls& calls() { return calls_; }
  // The photon's methods, or null.
  core::MethodHost* methods() const { return methods_; }

  // A client connection closed: its subscriptions, lock waits and bound locks, and its commands'
  // prompts end.
  void connection_closed(core::ConnectionId connection, core::Subscriber& subscriber);
  // Does what is due by the clock: leases, waits, job slots, prompts.
  void expire_due();
  // When expire_due() next has something to do; nothing when no service waits for the clock.
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const;

 private:
  // JobPublisher: job events and jobs' channel emits, to every subscriber.
  void publish(const std::string& channel, const boost::json::value& message) override;
  // BrokerListener: what the other daemons of the photon did.
  bool remote_message(std::string_view channel, const boost::json::value& message) override;
  void lock_released(std::string_view name) override;
  void shared_state_changed() override;
  void changed() {
    if (changed_) changed_();
  }
  // The local half of a publish: the line is built once, delivered, and kept in the window.
  Published deliver_locally(std::string_view channel, const core::Subscriber* exclude,
                            const boost::json::value& message, bool refusable = false);

  ServiceOptions options_;
  const Clock& clock_;
  core::MethodHost* methods_;
  std::function<void()> changed_;
  core::ChannelRegistry channels_;
  core::EventIds event_ids_;
  core::ReplayWindow replay_window_;
  ChannelStore* channel_store_ = nullptr;
  // Callers waiting for the store's writes, in write order.
  std::deque<std::pair<std::uint64_t, std::function<void(bool)>>> awaiting_writes_;
  // The local table's service, or with a broker the broker's (shared_locks_ then points at it).
  std::unique_ptr<core::LockService> locks_;
  broker::BrokerLockService* shared_locks_ = nullptr;
  broker::Broker* broker_ = nullptr;
  // Jobs kept in memory only, when the daemon gives no store.
  class MemoryOnlyJobs final : public core::JobPersistence {
    void save_job(const core::JobState&) override {}
    void delete_job(const std::string&) override {}
    void update_record(const core::JobState&, const core::RecordUpdate&) override {}
    void save_run(const core::JobRun&) override {}
  };
  MemoryOnlyJobs memory_only_jobs_;
  core::Scheduler scheduler_;
  MethodCalls calls_;
};

}  // namespace photon::daemon
