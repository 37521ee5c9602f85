// Cron jobs: each job calls one of the photon's methods at the times its cron expression names,
// in its time zone. Pure service: the clock, the method host, persistence and event publishing are
// injected, so tests cross DST changes and daemon restarts in microseconds.
#pragma once

#include "common/clock.hpp"
#include "jobs/cron.hpp"
#include "jobs/job_words.hpp"
#include "methods/method_host.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace photon::core {

// What `schedule` (or the photon's own declaration) asks for.
struct JobSpec {
  std::string id;
  std::string method;
  boost::json::object args;
  std::string cron;
  std::string timezone;  // IANA name; empty: the daemon's local zone
  CatchUp catch_up = CatchUp::kLatest;
  Overlap overlap = Overlap::kSkip;
  std::string created_by;
  bool declared = false;  // declared by the photon: restored at every start, not unschedulable
};

using EpochMillis = std::int64_t;

struct JobRun {
  std::uint64_t run_id = 0;
  std::string job_id;
  Trigger trigger = Trigger::kSchedule;
  EpochMillis scheduled_for = 0;
  EpochMillis started_at = 0;
  std::optional<EpochMillis> ended_at;     // none while running, or when interrupted
  RunStatus status = RunStatus::kRunning;  // never kInvalid
  std::string error;
  // Cut short by a crash of the daemon: its end is unknown (no ended_at), and `found_at` is when
  // the next start found it (status "failed").
  bool interrupted = false;
  std::optional<EpochMillis> found_at;
};

// A job as it stands: its definition and its record.
struct JobState {
  JobSpec spec;
  EpochMillis created_at = 0;
  std::optional<EpochMillis> last_run;
  std::optional<EpochMillis> next_run;
  std::uint64_t run_count = 0;
  std::optional<RunStatus> last_status;  // none: no run yet (or the job became valid again)
  std::string last_error;
};

// What a run did to its job's record (never to its definition): started, ended, or was skipped or
// missed. Fields left empty did not change.
struct RecordUpdate {
  std::optional<EpochMillis> last_run;  // a run started then
  std::uint64_t runs_ended = 0;         // runs to add to the count
  std::optional<RunStatus> last_status;
  std::optional<std::string> last_error;
};

// Where job definitions and runs are kept (the daemon's SQLite store, the Redis broker; a fake in
// tests).
class JobPersistence {
 public:
  virtual ~JobPersistence() = default;
  // A definition changed (scheduled, replaced, declared): `job` whole.
  virtual void save_job(const JobState& job) = 0;
  virtual void delete_job(const std::string& id) = 0;
  // A run changed the record of `job` (as it stands here, `update` applied). A store with one
  // writer may save `job` whole; a shared store applies `update` alone, and only to a job that
  // still exists there (a run ending elsewhere must not bring back a removed job).
  virtual void update_record(const JobState& job, const RecordUpdate& update) = 0;
  virtual void save_run(const JobRun& run) = 0;
  // Why a new job could not be kept now (e.g. its database cannot be opened while the process has
  // no descriptor left), or nothing. Asked before a schedule is accepted, so that nothing accepted
  // is lost; a later call tries again.
  virtual std::optional<std::string> unavailable() { return std::nullopt; }
};

// How a job's events and its method's channel emits reach subscribers.
class JobPublisher {
 public:
  virtual ~JobPublisher() = default;
  virtual void publish(const std::string& channel, const boost::json::value& message) = 0;
};

enum class ClaimOutcome {
  kLost,             // another daemon has the slot, or nobody can tell (then nobody runs it)
  kWon,              // this daemon handles the slot (and, if exclusive, holds the job's run)
  kWonWhileRunning,  // this daemon handles the slot, but the job runs already: it is skipped
};

// Decides which daemon runs a slot when daemons on several hosts share their jobs (the Redis
// broker), and keeps runs of an overlap-"skip" job from overlapping across them. Without it,
// every slot is this daemon's.
class FireClaims {
 public:
  virtual ~FireClaims() = default;
  // Calls `done` once, later, on the loop thread, with who handles `slot` of `job_id`. When
  // `exclusive`, a kWon also marks the job running for every daemon until end_exclusive_run.
  virtual void claim(const std::string& job_id, EpochMillis slot, bool exclusive,
                     std::function<void(ClaimOutcome)> done) = 0;
  // The run started under an exclusive kWon of `job_id` ended, or none was started: the job is
  // free again for every daemon.
  virtual void end_exclusive_run(const std::string& job_id) = 0;
};

struct SchedulerOptions {
  std::string photon_name;  // events go to jobs:<photon_name>
  std::size_t max_jobs = 10'000;
  std::size_t history_per_job = 100;
  // A slot noticed later than this after its time counts as missed (daemon down, machine asleep,
  // clock jumped), and the catch-up policy applies.
  std::chrono::seconds missed_after{60};
  // Missed slots older than this are never caught up.
  std::chrono::hours catch_up_window{24};
  // The longest the scheduler sleeps without looking at the wall clock again.
  std::chrono::seconds recheck{30};
  // Runs of one job at once with overlap "allow"; a slot beyond is skipped.
  std::size_t max_runs_per_job = 16;
  // How often a job whose zone could not be loaded (restored, declared or adopted while the
  // process had no descriptor left) tries again.
  std::chrono::seconds zone_retry{1};
  // Looks up a zone by name (cron_zone; tests substitute one that fails on demand). Throws
  // CronError for a name that is no zone, ZoneUnavailable for one that cannot be loaded now.
  std::function<const date::time_zone&(std::string_view)> zones = cron_zone;
};

// The outcome of a request to the scheduler (schedule, unschedule, run_now): `value` when it was
// done, else why not (`reason`, the sentence the client reads).
template <typename T>
struct JobResult {
  std::optional<T> value;
  std::string reason;

  static JobResult done(T result) { return {std::move(result), {}}; }
  static JobResult refused(std::string why) { return {std::nullopt, std::move(why)}; }
  bool ok() const { return value.has_value(); }
};

struct Unscheduled {};  // unschedule's value: the job is gone

// Invariants: every job has a parsed expression and a next_run unless its expression can no longer
// fire, or it is invalid (an unknown method or zone: kept, never fired); a job runs at most once at
// a time when its overlap policy is kSkip. A job whose zone could not be loaded yet ("pending")
// keeps the next_run it had (none only for a job new since), fires nothing, and loads its zone at
// every tick until it can; then it fires as usual (a slot passed meanwhile by the catch-up policy).
// Thread rule: the event loop thread only.
class Scheduler {
 public:
  // `methods` may be null (no job can be scheduled then); the others must outlive the scheduler.
  Scheduler(SchedulerOptions options, const Clock& clock, MethodHost* methods,
            JobPersistence& persistence, JobPublisher& publisher);
  ~Scheduler();

  // Start-up: jobs and runs as the store kept them, then the photon's declared jobs (which replace
  // stored definitions of the same id). Runs still "running" were cut short by a crash: they are
  // recorded as failed. Missed slots are then handled by the catch-up policy on the first tick.
  void restore(std::vector<JobState> jobs, std::vector<JobRun> runs, std::uint64_t last_run_id);
  void declare(const std::vector<JobSpec>& jobs);

  // Slots are claimed through `claims` before they are handled (null: every slot is ours).
  void set_claims(FireClaims* claims) { claims_ = claims; }
  // A job as another daemon of the photon saved it: its definition and record replace ours (the
  // next slot stays unless the schedule changed). Nothing is persisted: it comes from the store.
  void adopt(JobState state);
  // A job another daemon removed: gone here too, without persisting.
  void forget(const std::string& id);

  // Creates or replaces job `spec.id`; its next run (none: the expression never fires again).
  JobResult<std::optional<EpochMillis>> schedule(JobSpec spec);
  // Removes a job; refused when there is none, or when the photon declares it.
  JobResult<Unscheduled> unschedule(const std::string& id);
  // Runs a job now (trigger kManual); refused when unknown, invalid, or busy (running under
  // overlap kSkip, or at max_runs_per_job). The run's id.
  JobResult<std::uint64_t> run_now(const std::string& id);

  std::vector<const JobState*> jobs() const;  // sorted by id
  const JobState* find(const std::string& id) const;
  // A job's runs, newest first, at most `limit`.
  std::vector<JobRun> history(const std::string& id, std::size_t limit) const;
  std::size_t running() const;
  std::size_t size() const { return jobs_.size(); }

  // Runs what is due by the wall clock, and handles missed slots.
  void tick();
  // When tick() should next be called (never later than `recheck` from now); nothing without jobs.
  std::optional<std::chrono::steady_clock::time_point> next_wake() const;

 private:
  class RunObserver;
  struct Job {
    JobState state;
    std::optional<CronExpression> expression;
    const date::time_zone* zone = nullptr;  // null with an expression: pending its zone
    // Runs started and not yet ended (their ids: a run belongs to the job that started it, even
    // once the bounded history has dropped it).
    std::set<std::uint64_t> in_flight;
    std::deque<JobRun> history;  // oldest first, bounded
    // The latest slot the restored history shows handled (run, skipped or missed). The run of a
    // slot may reach the store in an earlier transaction than the job's next slot, so a daemon
    // killed in between restarts with next_run still at that slot: a slot at or before this one
    // is never handled again. Cleared once the job's first slot due after the restart is handled.
    std::optional<EpochMillis> handled_through;
  };

  // Whether a slot due now must be skipped (a run still runs under overlap kSkip, or the cap of
  // runs at once is reached under kAllow).
  bool busy(const Job& job) const;
  // Parses and checks spec's expression, zone and method; the refusal reason, or nothing. When
  // only the zone cannot be loaded now, `job` keeps its expression with no zone (pending) and the
  // reason is returned too.
  std::optional<std::string> prepare(const JobSpec& spec, Job& job) const;
  static bool pending(const Job& job) { return job.expression && job.zone == nullptr; }
  // Loads a pending job's zone; true when it is no longer pending.
  bool load_pending_zone(Job& job);
  void compute_next(Job& job, std::chrono::sys_seconds after);
  // Handles the due `slot` of `job`: runs it, or records it as skipped (also when it runs on
  // another daemon) or missed. Returns the id of the run started (0: none; ids start at 1);
  // `update` gets what changed in the record.
  std::uint64_t fire(Job& job, std::chrono::sys_seconds slot, std::chrono::sys_seconds now,
                     bool running_elsewhere, RecordUpdate& update);
  // A claim of `slot` of job `job_id` answered.
  void claimed(const std::string& job_id, std::chrono::sys_seconds slot, bool exclusive,
               ClaimOutcome outcome);
  std::uint64_t start_run(Job& job, Trigger trigger, EpochMillis scheduled_for);
  void record(Job& job, JobRun run);
  // Run `run_id` of job `job_id`, which called `method`, ended: recorded, and announced naming
  // that method (whatever the job's method is now).
  void run_finished(const std::string& job_id, const std::string& method, std::uint64_t run_id,
                    const CallOutcome& outcome);
  void publish_event(const char* event, boost::json::object data);
  std::chrono::sys_seconds now_seconds() const;

  SchedulerOptions options_;
  const Clock& clock_;
  MethodHost* methods_;
  JobPersistence& persistence_;
  JobPublisher& publisher_;
  FireClaims* claims_ = nullptr;
  std::map<std::string, Job, std::less<>> jobs_;
  // Runs started under an exclusive claim, by job id: their end frees the job for every daemon,
  // also when the job went meanwhile (so it is kept here, not in Job).
  std::map<std::string, std::uint64_t> exclusive_runs_;
  std::uint64_t last_run_id_ = 0;
  // The earliest next_run of all jobs, kept so next_wake() (asked after every request) does not
  // walk every job; recomputed only after a next_run changed or a job went.
  mutable std::optional<EpochMillis> earliest_next_run_;
  mutable bool earliest_stale_ = true;
  mutable bool any_pending_ = false;  // some job waits for its zone (kept with earliest_next_run_)
  // Runs' observers hold a weak reference: a run that ends after the scheduler is gone reports to
  // nobody.
  std::shared_ptr<Scheduler*> self_ = std::make_shared<Scheduler*>(this);
};

}  // namespace photon::core
