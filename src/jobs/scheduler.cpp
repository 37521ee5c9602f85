// Scheduler: slots by the wall clock, missed-slot and overlap policies, runs through the method
// host, events on jobs:<photon>, every change handed to persistence.
#include "jobs/scheduler.hpp"

#include "methods/method_args.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/request.hpp"

#include <algorithm>
#include <utility>

namespace photon::core {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::sys_seconds;

EpochMillis to_millis(sys_seconds time) {
  return duration_cast<milliseconds>(time.time_since_epoch()).count();
}

sys_seconds from_millis(EpochMillis millis) {
  return sys_seconds(std::chrono::floor<seconds>(milliseconds(millis)));
}

RunStatus run_status(CallStatus status) {
  switch (status) {
    case CallStatus::kOk:
      return RunStatus::kOk;
    case CallStatus::kTimedOut:
      return RunStatus::kTimedOut;
    case CallStatus::kCancelled:
      return RunStatus::kCancelled;
    case CallStatus::kBusy:
    case CallStatus::kFailed:
      break;
  }
  return RunStatus::kFailed;
}

}  // namespace

// Reports one run's end (and its method's channel emits) back to the scheduler.
class Scheduler::RunObserver final : public CallObserver {
 public:
  RunObserver(std::weak_ptr<Scheduler*> scheduler, std::string job_id, std::string method,
              std::uint64_t run_id)
      : scheduler_(std::move(scheduler)),
        job_id_(std::move(job_id)),
        method_(std::move(method)),
        run_id_(run_id) {}

  void on_emit(boost::json::object event) override {
    // Progress has no one to go to; channel events are published as a command's are.
    const boost::json::value* channel = event.if_contains("channel");
    if (channel == nullptr || !channel->is_string()) return;
    if (protocol::channel_name_error(channel->get_string(), false)) return;
    if (auto owner = scheduler_.lock()) {
      (*owner)->publisher_.publish(std::string(channel->get_string()),
                                   boost::json::value(std::move(event)));
    }
  }
  // Nobody is there to answer a job's prompt.
  void on_prompt(boost::json::object, PromptAnswer answer) override { answer(std::nullopt); }
  void on_finish(CallOutcome outcome) override {
    if (auto owner = scheduler_.lock()) (*owner)->run_finished(job_id_, method_, run_id_, outcome);
  }

 private:
  std::weak_ptr<Scheduler*> scheduler_;
  std::string job_id_;
  // The method this run called: its job may be replaced (another method) or gone by its end.
  std::string method_;
  std::uint64_t run_id_;
};

Scheduler::Scheduler(SchedulerOptions options, const Clock& clock, MethodHost* methods,
                     JobPersistence& persistence, JobPublisher& publisher)
    : options_(std::move(options)),
      clock_(clock),
      methods_(methods),
      persistence_(persistence),
      publisher_(publisher) {}

Scheduler::~Scheduler() = default;

sys_seconds Scheduler::now_seconds() const { return std::chrono::floor<seconds>(clock_.system()); }

bool Scheduler::busy(const Job& job) const {
  return job.state.spec.overlap == Overlap::kSkip
             ? !job.in_flight.empty()
             : job.in_flight.size() >= options_.max_runs_per_job;
}

std::optional<std::string> Scheduler::prepare(const JobSpec& spec, Job& job) const {
  if (methods_ == nullptr) return std::string(protocol::messages::kNothingToSchedule);
  const MethodInfo* method = find_method(*methods_, spec.method);
  if (method == nullptr)
    return protocol::describe(unknown_method(spec.method, methods_->methods()));
  if (auto problem = check_call_args(*method, spec.args)) return problem;
  try {
    job.expression = CronExpression::parse(spec.cron);
  } catch (const CronError& error) {
    return std::string("Invalid cron expression: ") + error.what();
  }
  try {
    job.zone = &options_.zones(spec.timezone);
  } catch (const ZoneUnavailable& error) {
    job.zone = nullptr;  // pending: the expression stays
    return std::string(error.what());
  } catch (const CronError& error) {
    job.expression.reset();
    return std::string("Invalid time zone: ") + error.what();
  }
  return std::nullopt;
}

bool Scheduler::load_pending_zone(Job& job) {
  try {
    job.zone = &options_.zones(job.state.spec.timezone);
  } catch (const ZoneUnavailable&) {
    return false;
  } catch (const CronError& error) {
    // The name stopped being a zone (the tz database changed under us): kept, but invalid.
    job.expression.reset();
    job.state.last_status = RunStatus::kInvalid;
    job.state.last_error = std::string("Invalid time zone: ") + error.what();
    job.state.next_run.reset();
    earliest_stale_ = true;
    return true;
  }
  if (!job.state.next_run) compute_next(job, now_seconds());
  earliest_stale_ = true;
  return true;
}

void Scheduler::compute_next(Job& job, sys_seconds after) {
  std::optional<sys_seconds> next = job.expression->next_after(after, *job.zone);
  job.state.next_run = next ? std::optional<EpochMillis>(to_millis(*next)) : std::nullopt;
  earliest_stale_ = true;
}

void Scheduler::restore(std::vector<JobState> jobs, std::vector<JobRun> runs,
                        std::uint64_t last_run_id) {
  last_run_id_ = last_run_id;
  earliest_stale_ = true;
  for (JobState& state : jobs) {
    Job job;
    if (auto reason = prepare(state.spec, job); reason && !pending(job)) {
      // Kept as it is (a method may come back with the next manifest), but it cannot fire.
      state.last_status = RunStatus::kInvalid;
      state.last_error = *reason;
      state.next_run.reset();
      job.expression.reset();
    }
    job.state = std::move(state);
    const std::string id = job.state.spec.id;
    jobs_.insert_or_assign(id, std::move(job));
  }
  for (JobRun& run : runs) {
    auto found = jobs_.find(run.job_id);
    if (found == jobs_.end()) continue;
    last_run_id_ = std::max(last_run_id_, run.run_id);
    if (run.trigger != Trigger::kManual) {
      // A scheduled slot (a manual run's scheduled_for is its start, not a slot).
      std::optional<EpochMillis>& handled = found->second.handled_through;
      handled = std::max(handled.value_or(run.scheduled_for), run.scheduled_for);
    }
    if (run.status == RunStatus::kRunning) {
      // The daemon stopped (crashed) while it ran: a failure whose end nobody saw. Its end stays
      // unknown (no made-up duration); what is known is when this start found it.
      run.status = RunStatus::kFailed;
      run.error = "the daemon stopped while it ran";
      run.ended_at.reset();
      run.interrupted = true;
      run.found_at = epoch_millis(clock_.system());
      persistence_.save_run(run);
      JobState& state = found->second.state;
      ++state.run_count;
      RecordUpdate update{.runs_ended = 1};
      if (!state.last_run || *state.last_run < run.started_at) {
        // Its start reached the store before the job's record did.
        state.last_run = run.started_at;
        update.last_run = state.last_run;
      }
      if (!state.last_run || *state.last_run <= run.started_at) {
        state.last_status = run.status;
        state.last_error = run.error;
        update.last_status = run.status;
        update.last_error = run.error;
      }
      persistence_.update_record(state, update);
    }
    found->second.history.push_back(std::move(run));
    while (found->second.history.size() > options_.history_per_job)
      found->second.history.pop_front();
  }
}

void Scheduler::declare(const std::vector<JobSpec>& declared) {
  for (const JobSpec& spec : declared) {
    JobSpec copy = spec;
    copy.declared = true;
    if (copy.created_by.empty()) copy.created_by = "photon";
    Job job;
    if (auto reason = prepare(copy, job); reason && !pending(job)) {
      throw CronError("job \"" + copy.id + "\": " + *reason);
    }
    auto existing = jobs_.find(copy.id);
    if (existing != jobs_.end()) {
      // The declaration wins; the record (runs, counts, the next slot) stays.
      // A changed schedule counts from now; an unchanged one keeps its next slot (so a slot
      // missed while the daemon was down is still caught up).
      const bool changed = existing->second.state.spec.cron != copy.cron ||
                           existing->second.state.spec.timezone != copy.timezone;
      existing->second.state.spec = std::move(copy);
      existing->second.expression = std::move(job.expression);
      existing->second.zone = job.zone;
      if (existing->second.state.last_status == RunStatus::kInvalid) {
        existing->second.state.last_status.reset();
      }
      if (pending(existing->second)) {
        if (changed) existing->second.state.next_run.reset();  // computed once the zone loads
      } else if (changed || !existing->second.state.next_run) {
        compute_next(existing->second, now_seconds());
      }
      earliest_stale_ = true;
      persistence_.save_job(existing->second.state);
      continue;
    }
    job.state.spec = std::move(copy);
    job.state.created_at = epoch_millis(clock_.system());
    if (!pending(job)) compute_next(job, now_seconds());
    persistence_.save_job(job.state);
    const std::string id = job.state.spec.id;
    jobs_.emplace(id, std::move(job));
  }
  // Jobs the photon declared once but no longer does stay, as ordinary jobs (they can now be
  // unscheduled or replaced).
  for (auto& [key, job] : jobs_) {
    if (!job.state.spec.declared) continue;
    const std::string& id = key;  // clang 14 cannot capture a structured binding
    const bool still = std::any_of(declared.begin(), declared.end(),
                                   [&](const JobSpec& spec) { return spec.id == id; });
    if (still) continue;
    job.state.spec.declared = false;
    persistence_.save_job(job.state);
  }
}

JobResult<std::optional<EpochMillis>> Scheduler::schedule(JobSpec spec) {
  auto existing = jobs_.find(spec.id);
  if (existing == jobs_.end() && jobs_.size() >= options_.max_jobs) {
    return JobResult<std::optional<EpochMillis>>::refused(
        protocol::describe({RefusalCode::kTooManyJobs, {std::to_string(options_.max_jobs)}}));
  }
  if (existing != jobs_.end() && existing->second.state.spec.declared) {
    return JobResult<std::optional<EpochMillis>>::refused(
        protocol::fill_message(protocol::messages::kJobDeclared, spec.id));
  }
  Job prepared;
  if (auto reason = prepare(spec, prepared)) {
    return JobResult<std::optional<EpochMillis>>::refused(std::move(*reason));
  }
  if (auto reason = persistence_.unavailable()) {
    return JobResult<std::optional<EpochMillis>>::refused(std::move(*reason));
  }

  Job& job = existing != jobs_.end() ? existing->second : jobs_[spec.id];
  if (existing == jobs_.end()) job.state.created_at = epoch_millis(clock_.system());
  // A replaced job keeps its record (runs, counts); its definition and next slot are new.
  job.handled_through.reset();
  job.state.spec = std::move(spec);
  job.expression = std::move(prepared.expression);
  job.zone = prepared.zone;
  if (job.state.last_status == RunStatus::kInvalid) job.state.last_status.reset();
  compute_next(job, now_seconds());
  persistence_.save_job(job.state);
  return JobResult<std::optional<EpochMillis>>::done(job.state.next_run);
}

JobResult<Unscheduled> Scheduler::unschedule(const std::string& id) {
  auto found = jobs_.find(id);
  if (found == jobs_.end()) {
    return JobResult<Unscheduled>::refused(protocol::describe({RefusalCode::kNoSuchJob, {id}}));
  }
  if (found->second.state.spec.declared) {
    return JobResult<Unscheduled>::refused(
        protocol::fill_message(protocol::messages::kDeclaredJobStays, id));
  }
  // A run in progress finishes; its end is published but no longer recorded.
  jobs_.erase(found);
  earliest_stale_ = true;
  persistence_.delete_job(id);
  return JobResult<Unscheduled>::done({});
}

JobResult<std::uint64_t> Scheduler::run_now(const std::string& id) {
  auto found = jobs_.find(id);
  if (found == jobs_.end()) {
    return JobResult<std::uint64_t>::refused(protocol::describe({RefusalCode::kNoSuchJob, {id}}));
  }
  Job& job = found->second;
  if (!job.expression) return JobResult<std::uint64_t>::refused(job.state.last_error);
  if (busy(job)) {
    return JobResult<std::uint64_t>::refused(
        job.state.spec.overlap == Overlap::kSkip
            ? protocol::fill_message(protocol::messages::kJobRunning, id)
            : protocol::fill_message(protocol::messages::kJobRunsAtLimit,
                                     {std::to_string(job.in_flight.size()), id,
                                      std::to_string(options_.max_runs_per_job)}));
  }
  const std::uint64_t run_id = start_run(job, Trigger::kManual, epoch_millis(clock_.system()));
  persistence_.update_record(job.state, RecordUpdate{.last_run = job.state.last_run});
  return JobResult<std::uint64_t>::done(run_id);
}

std::vector<const JobState*> Scheduler::jobs() const {
  std::vector<const JobState*> all;
  all.reserve(jobs_.size());
  for (const auto& [id, job] : jobs_) all.push_back(&job.state);
  return all;
}

const JobState* Scheduler::find(const std::string& id) const {
  auto found = jobs_.find(id);
  return found == jobs_.end() ? nullptr : &found->second.state;
}

std::vector<JobRun> Scheduler::history(const std::string& id, std::size_t limit) const {
  std::vector<JobRun> runs;
  auto found = jobs_.find(id);
  if (found == jobs_.end()) return runs;
  for (auto run = found->second.history.rbegin();
       run != found->second.history.rend() && runs.size() < limit; ++run) {
    runs.push_back(*run);
  }
  return runs;
}

std::size_t Scheduler::running() const {
  std::size_t total = 0;
  for (const auto& [id, job] : jobs_) total += job.in_flight.size();
  return total;
}

void Scheduler::tick() {
  const sys_seconds now = now_seconds();
  const EpochMillis now_ms = to_millis(now);
  for (auto& [id, job] : jobs_) {
    if (pending(job) && !load_pending_zone(job)) continue;
    if (!job.expression || !job.state.next_run || *job.state.next_run > now_ms) continue;
    // Several slots may have passed (a long sleep); only the latest one matters.
    const sys_seconds first_due = from_millis(*job.state.next_run);
    const sys_seconds slot =
        job.expression->latest_at_or_before(now, first_due - seconds(1), *job.zone)
            .value_or(first_due);
    // Only the first slot due after a restart can be one the restored history shows handled.
    const std::optional<EpochMillis> handled = std::exchange(job.handled_through, std::nullopt);
    if (handled && to_millis(slot) <= *handled) {
      // Handled before the daemon stopped (its next slot had not reached the store): not again.
      compute_next(job, std::max(now, from_millis(*handled)));
      if (claims_ == nullptr) persistence_.save_job(job.state);
      continue;
    }
    if (claims_ == nullptr) {
      RecordUpdate ignored;  // the whole job is saved below
      fire(job, slot, now, false, ignored);
    } else {
      // Whoever wins the slot handles it; until then the next slot is computed as usual. Under
      // overlap "skip" the claim also holds the job's run, so no other daemon starts one meanwhile.
      const bool exclusive = job.state.spec.overlap == Overlap::kSkip;
      claims_->claim(id, to_millis(slot), exclusive,
                     [alive = std::weak_ptr<Scheduler*>(self_), job_id = id, slot,
                      exclusive](ClaimOutcome outcome) {
                       if (auto owner = alive.lock())
                         (*owner)->claimed(job_id, slot, exclusive, outcome);
                     });
    }
    compute_next(job, now);
    // Shared jobs keep their next slot per daemon; the record is saved by the slot's winner.
    if (claims_ == nullptr) persistence_.save_job(job.state);
  }
}

void Scheduler::claimed(const std::string& job_id, sys_seconds slot, bool exclusive,
                        ClaimOutcome outcome) {
  if (outcome == ClaimOutcome::kLost) return;
  const bool holds = exclusive && outcome == ClaimOutcome::kWon;
  bool running = false;
  auto found = jobs_.find(job_id);
  if (found != jobs_.end() && found->second.expression) {
    RecordUpdate update;
    const std::uint64_t run =
        fire(found->second, slot, now_seconds(), outcome == ClaimOutcome::kWonWhileRunning, update);
    persistence_.update_record(found->second.state, update);
    // A run that ended at once (its method could not start) has been and gone.
    running = run != 0 && found->second.in_flight.contains(run);
    if (running && holds) exclusive_runs_[job_id] = run;
  }
  if (holds && !running) claims_->end_exclusive_run(job_id);  // held, but nothing runs
}

std::uint64_t Scheduler::fire(Job& job, sys_seconds slot, sys_seconds now, bool running_elsewhere,
                              RecordUpdate& update) {
  const std::string& id = job.state.spec.id;
  const EpochMillis now_ms = to_millis(now);
  const auto late = now - slot;
  const bool missed = late > options_.missed_after;
  if (running_elsewhere || busy(job)) {
    // The last run still runs (here or, for a shared job, on another daemon): this slot is
    // skipped, late or not.
    JobRun skipped{++last_run_id_,
                   id,
                   missed ? Trigger::kCatchUp : Trigger::kSchedule,
                   to_millis(slot),
                   now_ms,
                   now_ms,
                   RunStatus::kSkipped,
                   running_elsewhere || job.state.spec.overlap == Overlap::kSkip
                       ? std::string(protocol::messages::kPreviousRunRunning)
                       : std::string(protocol::sentence_of(RefusalCode::kTooManyJobRuns))};
    job.state.last_status = RunStatus::kSkipped;
    update.last_status = job.state.last_status;
    record(job, std::move(skipped));
    publish_event(
        "job-skipped",
        {{"jobId", id}, {"method", job.state.spec.method}, {"scheduledFor", to_millis(slot)}});
    return 0;
  }
  if (!missed ||
      (job.state.spec.catch_up == CatchUp::kLatest && late <= options_.catch_up_window)) {
    const std::uint64_t run_id =
        start_run(job, missed ? Trigger::kCatchUp : Trigger::kSchedule, to_millis(slot));
    update.last_run = job.state.last_run;
    return run_id;
  }
  JobRun record_of_miss{
      ++last_run_id_, id,     Trigger::kSchedule, to_millis(slot),
      now_ms,         now_ms, RunStatus::kMissed, std::string(protocol::messages::kSlotMissed)};
  job.state.last_status = RunStatus::kMissed;
  update.last_status = job.state.last_status;
  record(job, std::move(record_of_miss));
  return 0;
}

void Scheduler::adopt(JobState state) {
  const std::string id = state.spec.id;
  auto existing = jobs_.find(id);
  Job prepared;
  const auto reason = prepare(state.spec, prepared);
  if (existing == jobs_.end()) {
    if (jobs_.size() >= options_.max_jobs) return;
    existing = jobs_.emplace(id, Job{}).first;
  }
  Job& job = existing->second;
  const bool changed = !job.expression || job.state.spec.cron != state.spec.cron ||
                       job.state.spec.timezone != state.spec.timezone;
  const std::optional<EpochMillis> next_run = job.state.next_run;
  job.state = std::move(state);
  if (reason && !pending(prepared)) {
    job.expression.reset();
    job.state.last_status = RunStatus::kInvalid;
    job.state.last_error = *reason;
    job.state.next_run.reset();
  } else {
    job.expression = std::move(prepared.expression);
    job.zone = prepared.zone;
    job.state.next_run = changed ? std::nullopt : next_run;
    if (!pending(job) && !job.state.next_run) compute_next(job, now_seconds());
  }
  earliest_stale_ = true;
}

void Scheduler::forget(const std::string& id) {
  if (jobs_.erase(id) > 0) earliest_stale_ = true;
}

std::optional<std::chrono::steady_clock::time_point> Scheduler::next_wake() const {
  if (earliest_stale_) {
    earliest_next_run_.reset();
    any_pending_ = false;
    for (const auto& [id, job] : jobs_) {
      if (pending(job)) {
        any_pending_ = true;  // its next_run may be stale: it waits for its zone, not for it
        continue;
      }
      if (job.state.next_run &&
          (!earliest_next_run_ || *job.state.next_run < *earliest_next_run_)) {
        earliest_next_run_ = job.state.next_run;
      }
    }
    earliest_stale_ = false;
  }
  // A job waiting for its zone is retried soon, and not in a busy loop.
  const auto retry = clock_.steady() + duration_cast<milliseconds>(options_.zone_retry);
  const std::optional<EpochMillis>& earliest = earliest_next_run_;
  if (!earliest) return any_pending_ ? std::optional(retry) : std::nullopt;
  // Sleep on the steady clock, but never long: a suspend or a wall-clock change is noticed at the
  // next look, and a slot months away is reached by many short sleeps.
  const auto until =
      milliseconds(*earliest) - duration_cast<milliseconds>(clock_.system().time_since_epoch());
  const auto wait = std::clamp<milliseconds>(until, milliseconds(0), options_.recheck);
  return any_pending_ ? std::min(retry, clock_.steady() + wait) : clock_.steady() + wait;
}

std::uint64_t Scheduler::start_run(Job& job, Trigger trigger, EpochMillis scheduled_for) {
  const std::uint64_t run_id = ++last_run_id_;
  const EpochMillis now = epoch_millis(clock_.system());
  job.in_flight.insert(run_id);
  job.state.last_run = now;
  record(job, JobRun{run_id,
                     job.state.spec.id,
                     trigger,
                     scheduled_for,
                     now,
                     std::nullopt,
                     RunStatus::kRunning,
                     {}});
  publish_event("job-started", {{"jobId", job.state.spec.id},
                                {"method", job.state.spec.method},
                                {"runId", run_id},
                                {"trigger", to_string(trigger)},
                                {"scheduledFor", scheduled_for}});
  // Calls of jobs run in their own session, as if one more client called.
  methods_->start(
      {job.state.spec.method, job.state.spec.args, "scheduler", "scheduler"},
      std::make_shared<RunObserver>(self_, job.state.spec.id, job.state.spec.method, run_id));
  return run_id;
}

void Scheduler::record(Job& job, JobRun run) {
  persistence_.save_run(run);
  job.history.push_back(std::move(run));
  while (job.history.size() > options_.history_per_job) job.history.pop_front();
}

void Scheduler::run_finished(const std::string& job_id, const std::string& method,
                             std::uint64_t run_id, const CallOutcome& outcome) {
  auto found = jobs_.find(job_id);
  // The job's count with this run in it; 0 when the run counts for no job (its job was
  // unscheduled while it ran, perhaps scheduled again since as a new job).
  std::uint64_t run_count = 0;
  // The run belongs to the job only if the job started it (a job unscheduled and scheduled again
  // under the same id is a new job, which this run must not count for).
  if (found != jobs_.end() && found->second.in_flight.erase(run_id) == 1) {
    Job& job = found->second;
    ++job.state.run_count;
    run_count = job.state.run_count;
    job.state.last_status = run_status(outcome.status);
    job.state.last_error = outcome.ok() ? "" : outcome.error;
    for (auto run = job.history.rbegin(); run != job.history.rend(); ++run) {
      if (run->run_id != run_id) continue;
      run->ended_at = epoch_millis(clock_.system());
      run->status = *job.state.last_status;
      run->error = job.state.last_error;
      persistence_.save_run(*run);
      break;
    }
    persistence_.update_record(job.state, RecordUpdate{.runs_ended = 1,
                                                       .last_status = job.state.last_status,
                                                       .last_error = job.state.last_error});
  }
  // Told after the run's record, so the next daemon to run the job comes after it everywhere.
  if (auto held = exclusive_runs_.find(job_id);
      held != exclusive_runs_.end() && held->second == run_id) {
    exclusive_runs_.erase(held);
    if (claims_ != nullptr) claims_->end_exclusive_run(job_id);
  }
  if (outcome.ok()) {
    publish_event(
        "job-completed",
        {{"jobId", job_id}, {"method", method}, {"runCount", run_count}, {"runId", run_id}});
  } else {
    publish_event(
        "job-failed",
        {{"jobId", job_id}, {"method", method}, {"error", outcome.error}, {"runId", run_id}});
  }
}

void Scheduler::publish_event(const char* event, boost::json::object data) {
  publisher_.publish("jobs:" + options_.photon_name,
                     boost::json::object{{"event", event}, {"data", std::move(data)}});
}

}  // namespace photon::core
