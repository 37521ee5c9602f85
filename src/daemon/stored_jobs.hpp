// The scheduler's persistence on the daemon's SQLite store: conversions between the scheduler's
// jobs and runs and the store's records.
#pragma once

#include "daemon/services.hpp"
#include "jobs/scheduler.hpp"
#include "store/job_store.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace photon::daemon {

// The database is opened at start only when it exists, else when the first job is scheduled: most
// photons never schedule a job, and SQLite's pages and writer thread then cost them nothing. An
// open that fails is not remembered: `schedule` is refused with the reason (unavailable()) and the
// next one tries again, so a job is only accepted once it can be kept.
// Thread rule: the event loop thread only (the store writes on its own thread).
class StoredJobs final : public core::JobPersistence {
 public:
  // The database is entry `name` of `dir`, which must outlive this object.
  StoredJobs(const PrivateDir& dir, std::string name, store::JobStoreOptions options = {})
      : dir_(dir), name_(std::move(name)), options_(options) {}

  // Opens the database if the file exists. Throws store::StoreError (a damaged or foreign file).
  void open_if_present();

  // What the store kept, for Scheduler::restore (nothing when there is no database yet).
  std::vector<core::JobState> load_jobs();
  std::vector<core::JobRun> load_runs(std::size_t per_job);
  std::uint64_t last_run_id() { return store_ ? store_->last_run_id() : 0; }

  void save_job(const core::JobState& job) override;
  void delete_job(const std::string& id) override;
  // The only writer of its file: the job is saved whole.
  void update_record(const core::JobState& job, const core::RecordUpdate&) override {
    save_job(job);
  }
  void save_run(const core::JobRun& run) override;
  std::optional<std::string> unavailable() override;

  // Waits for queued writes (before an exit that skips destructors).
  void flush() {
    if (store_) store_->flush();
  }

  // The store, opened (created) now if need be; null when it cannot be (unavailable() says why).
  store::JobStore* open_now() { return writable(); }

 private:
  // The store, opened now if need be; null when it cannot be opened now (logged once per run of
  // failures, the reason kept for unavailable()).
  store::JobStore* writable();

  const PrivateDir& dir_;
  std::string name_;
  store::JobStoreOptions options_;
  std::unique_ptr<store::JobStore> store_;
  std::string open_error_;  // why the last open failed; empty after a success
};

// The messages of persistent channels (--persist), kept in the same store as the jobs.
class StoredChannels final : public ChannelStore {
 public:
  explicit StoredChannels(store::JobStore& store) : store_(store) {}
  std::optional<std::uint64_t> save(std::string event_id, std::string_view channel,
                                    std::string message_json, std::int64_t at_ms,
                                    bool refusable) override {
    return store_.save_event({.event_id = std::move(event_id),
                              .channel = std::string(channel),
                              .message_json = std::move(message_json),
                              .at_ms = at_ms},
                             refusable);
  }
  std::size_t max_waiting() const override { return store_.max_queued_events(); }

 private:
  store::JobStore& store_;
};

}  // namespace photon::daemon
