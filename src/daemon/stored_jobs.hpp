// The scheduler's persistence on the daemon's SQLite store: conversions between the scheduler's
// jobs and runs and the store's records.
#pragma once

#include "core/scheduler.hpp"
#include "store/job_store.hpp"

#include <memory>
#include <vector>

namespace photon::daemon {

// Thread rule: the event loop thread only (the store writes on its own thread).
class StoredJobs final : public core::JobPersistence {
 public:
  explicit StoredJobs(std::unique_ptr<store::JobStore> store) : store_(std::move(store)) {}

  // What the store kept, for Scheduler::restore.
  std::vector<core::JobState> load_jobs();
  std::vector<core::JobRun> load_runs(std::size_t per_job);
  std::uint64_t last_run_id() { return store_->last_run_id(); }

  void save_job(const core::JobState& job) override;
  void delete_job(const std::string& id) override;
  void save_run(const core::JobRun& run) override;

  store::JobStore& store() { return *store_; }

 private:
  std::unique_ptr<store::JobStore> store_;
};

}  // namespace photon::daemon
