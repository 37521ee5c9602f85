// The Redis broker: daemons of one photon on several hosts, pointed at one Redis, share channels,
// locks and jobs. Redis does the work (PUBLISH/PSUBSCRIBE, keys with expiry, Lua scripts for
// compare-and-set, src/broker/lua/); this class is the adapter. Keys and channels live under
// photon:NAME:. Its connections and channels are in redis_broker.cpp, its locks in
// redis_broker_locks.cpp, its jobs in redis_broker_jobs.cpp.
#pragma once

#include "broker/broker.hpp"
#include "broker/redis_connection.hpp"
#include "common/clock.hpp"
#include "jobs/scheduler.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace photon::broker {

struct RedisBrokerOptions {
  RedisUrl url;
  std::string photon_name;
  // Publishes waiting for Redis beyond this are dropped (counted), not queued without bound.
  std::size_t max_forward_pending = 10'000;
  // ...and while this many bytes of commands wait to be sent (large messages to a slow Redis).
  std::size_t max_forward_bytes = 64u << 20;
  std::size_t history_per_job = 100;
  // Locks held at once by the whole photon (every daemon's clients), as Redis counts them.
  std::size_t max_locks = 10'000;
  // photon-core's Redis channels (PREFIX + channel, e.g. photon:channel:board:1), bridged both
  // ways in photon-core's message form (channels/photon_core_form.hpp); empty: not bridged.
  std::string photon_core_prefix;
  // A photon-core payload longer than this is not delivered (counted as invalid), as a client's
  // publish over --max-line-bytes is refused.
  std::size_t max_photon_core_bytes = 1u << 20;
};

// Why `prefix` cannot be photon-core's channel prefix beside a photon's names in Redis, in any
// database (one would receive the other's messages), or nothing.
std::optional<std::string> photon_core_prefix_error(std::string_view prefix,
                                                    std::string_view photon_name);

// Invariants: `listener_` and `scheduler_`, once set, outlive the broker; every callback handed
// to a public function is called exactly once (an unreachable Redis answers with an error).
// Thread rule: the event loop thread only.
class RedisBroker final : public Broker, public core::FireClaims, public core::JobPersistence {
 public:
  RedisBroker(boost::asio::io_context& loop, const Clock& clock, RedisBrokerOptions options);
  ~RedisBroker() override;

  // Connects (in the background: this returns at once; the daemon serves while Redis is away).
  void start();
  // The scheduler whose jobs are shared (definitions from Redis replace its own).
  void attach_scheduler(core::Scheduler& scheduler) { scheduler_ = &scheduler; }
  const std::string& instance_id() const { return instance_id_; }
  // Calls `done` once every command sent so far has its reply, or after `grace` (shutdown: the
  // releases of connection-bound locks go out before the loop stops).
  void flush(std::chrono::milliseconds grace, std::function<void()> done);

  // Broker
  void set_listener(BrokerListener* listener) override { listener_ = listener; }
  void forward(std::string_view channel, const boost::json::value& message) override;
  void acquire(const std::string& name, const std::string& holder, std::chrono::milliseconds lease,
               std::uint64_t above, std::optional<std::uint64_t> bind_to, std::uint64_t renew_token,
               std::function<void(SharedLockResult)> done) override;
  void release(const std::string& name, const std::string& holder,
               std::function<void(SharedReleaseResult)> done) override;
  void release_bound(const std::string& name, std::uint64_t connection,
                     std::function<void(SharedReleaseResult)> done) override;
  void query(const std::string& name,
             std::function<void(std::optional<SharedLock>, std::string)> done) override;
  void list(std::size_t limit,
            std::function<void(std::vector<SharedLock>, std::string)> done) override;
  void job_history(const std::string& job_id, std::size_t limit,
                   std::function<void(boost::json::array, std::string)> done) override;
  boost::json::object status() const override;

  // core::FireClaims: the slot marker photon:NAME:fired:JOB; an exclusive claim also takes
  // photon:NAME:running:JOB, a lease renewed while the run lasts.
  void claim(const std::string& job_id, core::EpochMillis slot, bool exclusive,
             std::function<void(core::ClaimOutcome)> done) override;
  void end_exclusive_run(const std::string& job_id) override;

  // core::JobPersistence: definitions in the hash photon:NAME:jobs, records in photon:NAME:job:JOB
  // (every daemon told of each change), finished runs in a bounded list per job. A record update
  // changes only the record of a job that still exists. Made while Redis is away, definition
  // writes wait (the last one per job) and record updates too (merged per job); both go when it
  // is back, definitions first.
  void save_job(const core::JobState& job) override;
  void delete_job(const std::string& id) override;
  void update_record(const core::JobState& job, const core::RecordUpdate& update) override;
  void save_run(const core::JobRun& run) override;

 private:
  void on_state(const char* role, LinkState state, const std::string& reason);
  void on_message(std::string_view channel, std::string_view payload);
  // A message a TypeScript photon (or any photon-core broker) published on photon-core's channel.
  void on_photon_core_message(std::string_view channel, std::string_view payload);
  // Publishes `message` on photon-core's channel too (with --photon-core-channels).
  void forward_to_photon_core(std::string_view channel, const boost::json::value& message);
  // A definition written (nothing: the job removed), now or when Redis is back.
  void write_job(const std::string& id, std::optional<core::JobState> job);
  void send_job_write(const std::string& id, std::optional<core::JobState> job);
  void send_record_update(const std::string& id, const core::RecordUpdate& update);
  // Reads the job as Redis has it into the scheduler (or forgets it there when it is gone).
  void read_job(const std::string& id);
  // Redis came back: pending job writes go, then every daemon's jobs are read.
  void sync_jobs();
  // Renews the leases of this daemon's exclusive runs every kRunLeaseRenewal while there are any.
  void renew_runs_later();
  // Renews them now (also when Redis is back: an outage shorter than the lease keeps them).
  void renew_runs();
  // Reads of jobs cross this daemon's own writes of them: a read sent before a write of the same
  // job is answered before Redis runs the write, so its answer is stale and must not be adopted.
  void note_local_write(const std::string& id);
  bool written_here_since(const std::string& id, std::uint64_t read_sent_at) const;
  void read_done();
  // A connection of this daemon as a lock's binding names it in Redis (unique across daemons).
  std::string binding(std::uint64_t connection) const {
    return instance_id_ + ":" + std::to_string(connection);
  }
  // release.lua: by `holder`, or (with a binding) only while the lock is bound to it.
  void release_lock(const std::string& name, const std::string& holder, const std::string& bound,
                    std::function<void(SharedReleaseResult)> done);
  std::string record_key(const std::string& id) const { return prefix_ + "job:" + id; }
  std::string running_key(const std::string& id) const { return prefix_ + "running:" + id; }
  std::string job_notice(const std::string& id) const { return instance_id_ + " " + id; }
  LinkState overall() const;
  // 64 random bits in hex: the daemon's instance id, and a new epoch of the Redis data set.
  static std::string random_id();

  boost::asio::io_context& loop_;
  const Clock& clock_;
  RedisBrokerOptions options_;
  std::string prefix_;          // photon:NAME: (keys)
  std::string channel_prefix_;  // photon:NAME: for database 0, else photon:NAME@DB: (pub/sub)
  std::string instance_id_;
  BrokerListener* listener_ = nullptr;
  core::Scheduler* scheduler_ = nullptr;
  std::unique_ptr<RedisConnection> commands_;
  std::unique_ptr<RedisConnection> subscriber_;
  bool subscribed_ = false;
  LinkState reported_ = LinkState::kConnecting;
  bool announced_down_ = false;
  std::chrono::seconds next_reminder_{60};
  std::chrono::system_clock::time_point since_;
  std::string last_error_;
  std::uint64_t forwarded_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t dropped_ = 0;
  // photon-core's channels: this daemon's mark on what it publishes there, the mark's part every
  // daemon of the photon shares, and what crossed.
  std::string photon_core_mark_;
  std::string photon_core_mark_prefix_;
  std::uint64_t photon_core_forwarded_ = 0;
  std::uint64_t photon_core_received_ = 0;
  std::uint64_t photon_core_dropped_ = 0;
  std::uint64_t photon_core_invalid_ = 0;
  // Job definitions written while Redis was away, by id (nothing: deleted).
  std::map<std::string, std::optional<core::JobState>> pending_jobs_;
  // Record updates made while Redis was away, merged by job id.
  std::map<std::string, core::RecordUpdate> pending_records_;
  // Jobs whose run this daemon holds (photon:NAME:running:JOB is ours), and whether their
  // renewal is armed.
  std::set<std::string> exclusive_runs_;
  // Jobs whose running key may be this daemon's though no run of it goes on here (a claim or an
  // end of run got no answer: the connection dropped): freed in sync_jobs.
  std::set<std::string> running_keys_to_free_;
  bool renewing_ = false;
  boost::asio::steady_timer renew_timer_;
  // Local writes of jobs while reads are in flight, by job: the write's number (see
  // note_local_write). Cleared whenever no read is in flight, so it holds a few entries at most.
  std::map<std::string, std::uint64_t> local_writes_;
  std::uint64_t local_write_count_ = 0;
  std::size_t reads_in_flight_ = 0;
  // The Redis data set last seen (photon:NAME:epoch), and whether a connect found another whose
  // write-back is still owed (until the next read of every job is answered).
  std::string epoch_;
  bool data_lost_ = false;
  boost::asio::steady_timer flush_timer_;
  std::shared_ptr<RedisBroker*> self_ = std::make_shared<RedisBroker*>(this);
};

}  // namespace photon::broker
