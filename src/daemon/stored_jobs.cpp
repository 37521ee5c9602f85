// StoredJobs: the scheduler's jobs and runs to and from store records.
#include "daemon/stored_jobs.hpp"

#include "protocol/error_messages.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <system_error>

namespace photon::daemon {

void StoredJobs::open_if_present() {
  bool present = false;
  try {
    present = dir_.status(name_).has_value();
  } catch (const std::system_error& error) {
    throw store::StoreError(error.what());
  }
  if (present) store_ = store::JobStore::open(dir_, name_, options_);
}

store::JobStore* StoredJobs::writable() {
  if (store_) return store_.get();
  try {
    store_ = store::JobStore::open(dir_, name_, options_);
    if (!open_error_.empty()) spdlog::info("job database {} opened", name_);
    open_error_.clear();
  } catch (const store::StoreError& error) {
    if (open_error_.empty()) spdlog::error("cannot open the job database: {}", error.what());
    open_error_ = error.what();
  }
  return store_.get();
}

std::optional<std::string> StoredJobs::unavailable() {
  if (writable() != nullptr) return std::nullopt;
  return protocol::describe({RefusalCode::kJobStoreUnavailable, {open_error_}});
}

std::vector<core::JobState> StoredJobs::load_jobs() {
  std::vector<core::JobState> jobs;
  if (!store_) return jobs;
  for (store::JobRecord& record : store_->load_jobs()) {
    core::JobState job;
    job.spec.id = std::move(record.id);
    job.spec.method = std::move(record.method);
    boost::system::error_code ec;
    boost::json::value args = boost::json::parse(record.args_json, ec);
    if (!ec && args.is_object()) {
      job.spec.args = std::move(args.get_object());
    } else {
      spdlog::warn("job \"{}\": stored args are not a JSON object; using {{}}", job.spec.id);
    }
    job.spec.cron = std::move(record.cron);
    job.spec.timezone = std::move(record.timezone);
    job.spec.catch_up = core::parse_catch_up(record.catch_up).value_or(core::CatchUp::kLatest);
    job.spec.overlap = core::parse_overlap(record.overlap).value_or(core::Overlap::kSkip);
    job.spec.created_by = std::move(record.created_by);
    job.spec.declared = record.declared;
    job.created_at = record.created_at_ms;
    job.last_run = record.last_run_ms;
    job.next_run = record.next_run_ms;
    job.run_count = record.run_count;
    job.last_status = core::parse_run_status(record.last_status);
    job.last_error = std::move(record.last_error);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

std::vector<core::JobRun> StoredJobs::load_runs(std::size_t per_job) {
  std::vector<core::JobRun> runs;
  if (!store_) return runs;
  for (store::RunRecord& record : store_->load_runs(per_job)) {
    // A status no version wrote reads as a failure, a trigger as the schedule's.
    runs.push_back({record.run_id, std::move(record.job_id),
                    core::parse_trigger(record.trigger).value_or(core::Trigger::kSchedule),
                    record.scheduled_for_ms, record.started_at_ms, record.ended_at_ms,
                    core::parse_run_status(record.status).value_or(core::RunStatus::kFailed),
                    std::move(record.error), record.interrupted, record.found_at_ms});
  }
  return runs;
}

void StoredJobs::save_job(const core::JobState& job) {
  store::JobRecord record;
  record.id = job.spec.id;
  record.method = job.spec.method;
  record.args_json = boost::json::serialize(job.spec.args);
  record.cron = job.spec.cron;
  record.timezone = job.spec.timezone;
  record.catch_up = std::string(core::to_string(job.spec.catch_up));
  record.overlap = std::string(core::to_string(job.spec.overlap));
  record.created_at_ms = job.created_at;
  record.created_by = job.spec.created_by;
  record.last_run_ms = job.last_run;
  record.next_run_ms = job.next_run;
  record.run_count = job.run_count;
  record.last_status = job.last_status ? std::string(core::to_string(*job.last_status)) : "";
  record.last_error = job.last_error;
  record.declared = job.spec.declared;
  if (store::JobStore* store = writable()) store->save_job(std::move(record));
}

void StoredJobs::delete_job(const std::string& id) {
  if (store::JobStore* store = writable()) store->delete_job(id);
}

void StoredJobs::save_run(const core::JobRun& run) {
  if (store::JobStore* store = writable()) {
    store->save_run({run.run_id, run.job_id, std::string(core::to_string(run.trigger)),
                     run.scheduled_for, run.started_at, run.ended_at,
                     std::string(core::to_string(run.status)), run.error, run.interrupted,
                     run.found_at});
  }
}

}  // namespace photon::daemon
