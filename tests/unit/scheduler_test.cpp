// Unit tests of the Scheduler with a fake clock, a fake method host, and in-memory persistence and
// publishing: slots, missed-run and overlap policies, restarts, declared jobs.
#include "jobs/scheduler.hpp"
#include "fake_clock.hpp"
#include "fake_method_host.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <map>

namespace photon::core {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

class FakeHost : public testing::FakeMethodHost {
 public:
  FakeHost() : FakeMethodHost({{"cleanup", "", {}}, {"report", "", {}}}) {}
};

class MemoryStore final : public JobPersistence {
 public:
  void save_job(const JobState& job) override { jobs[job.spec.id] = job; }
  void delete_job(const std::string& id) override {
    jobs.erase(id);
    deleted.push_back(id);
  }
  void update_record(const JobState& job, const RecordUpdate& update) override {
    jobs[job.spec.id] = job;
    updates.push_back({job.spec.id, update});
  }
  void save_run(const JobRun& run) override { runs[run.run_id] = run; }
  std::optional<std::string> unavailable() override { return unavailable_reason; }

  std::optional<std::string> unavailable_reason;  // set: jobs cannot be kept now
  std::map<std::string, JobState> jobs;
  std::map<std::uint64_t, JobRun> runs;
  std::vector<std::string> deleted;
  std::vector<std::pair<std::string, RecordUpdate>> updates;
};

class RecordingPublisher final : public JobPublisher {
 public:
  void publish(const std::string& channel, const json::value& message) override {
    messages.push_back({channel, message});
  }
  // The events published on jobs:kanban, by name.
  std::vector<std::string> events() const {
    std::vector<std::string> names;
    for (const auto& [channel, message] : messages) {
      if (channel == "jobs:kanban") names.push_back(std::string(message.at("event").as_string()));
    }
    return names;
  }
  std::vector<std::pair<std::string, json::value>> messages;
};

// 2025-11-24 00:00:00 UTC, a Monday.
constexpr std::chrono::sys_seconds kMonday{std::chrono::seconds(1763942400)};

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() {
    clock_.jump_wall_clock(kMonday - std::chrono::floor<std::chrono::seconds>(clock_.system()));
    make_scheduler();
  }

  void make_scheduler() {
    SchedulerOptions options{.photon_name = "kanban"};
    // The real zones, unless the test takes them away (as a process without descriptors has).
    options.zones = [this](std::string_view name) -> const date::time_zone& {
      ++zone_lookups_;
      if (zones_down_) {
        throw ZoneUnavailable("time zone \"" + std::string(name) +
                              "\" cannot be loaded now: Too many open files; try again");
      }
      return cron_zone(name);
    };
    scheduler_ = std::make_unique<Scheduler>(options, clock_, &host_, store_, publisher_);
  }

  JobSpec spec(std::string id, std::string cron, std::string method = "cleanup") {
    JobSpec result;
    result.id = std::move(id);
    result.method = std::move(method);
    result.cron = std::move(cron);
    result.timezone = "UTC";
    result.args = {{"maxAge", 86400}};
    result.created_by = "cli-1";
    return result;
  }

  // Moves time on by `by`, in steps no longer than the scheduler would sleep, ticking as it goes.
  void run_for(std::chrono::seconds by) {
    const auto end = clock_.steady() + by;
    while (clock_.steady() < end) {
      auto wake = scheduler_->next_wake();
      auto step = wake ? std::min(*wake, end) - clock_.steady() : end - clock_.steady();
      if (step <= std::chrono::steady_clock::duration::zero()) step = std::chrono::seconds(1);
      clock_.advance(step);
      scheduler_->tick();
    }
  }

  void finish_all(CallOutcome outcome = CallOutcome::success("done")) {
    auto calls = std::exchange(host_.calls, {});
    for (auto& call : calls) call.observer->on_finish(outcome);
  }

  EpochMillis millis(std::chrono::sys_seconds time) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  }

  bool zones_down_ = false;
  int zone_lookups_ = 0;
  testing::FakeClock clock_;
  FakeHost host_;
  MemoryStore store_;
  RecordingPublisher publisher_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, ScheduleReportsTheNextRunAndPersists) {
  auto result = scheduler_->schedule(spec("hourly", "0 * * * *"));
  ASSERT_TRUE(result.ok()) << result.reason;
  EXPECT_EQ(*result.value, millis(kMonday + 1h));
  ASSERT_TRUE(store_.jobs.contains("hourly"));
  EXPECT_EQ(store_.jobs["hourly"].spec.created_by, "cli-1");
  EXPECT_EQ(store_.jobs["hourly"].created_at, millis(kMonday));
}

TEST_F(SchedulerTest, RefusalsSayWhy) {
  EXPECT_EQ(scheduler_->schedule(spec("bad", "61 * * * *")).reason,
            "Invalid cron expression: minute 61 is out of range 0-59");
  EXPECT_EQ(scheduler_->schedule(spec("never", "0 0 30 2 *"))
                .reason.rfind("Invalid cron expression: ", 0),
            0u);
  JobSpec zone = spec("zone", "* * * * *");
  zone.timezone = "Mars/Base";
  EXPECT_EQ(scheduler_->schedule(zone).reason,
            "Invalid time zone: unknown time zone \"Mars/Base\"");
  EXPECT_EQ(scheduler_->schedule(spec("m", "* * * * *", "nope")).reason,
            "unknown method \"nope\"; available: cleanup, report");
  EXPECT_TRUE(store_.jobs.empty());

  RecordingPublisher publisher;
  MemoryStore store;
  Scheduler no_methods({.photon_name = "x"}, clock_, nullptr, store, publisher);
  EXPECT_FALSE(no_methods.schedule(spec("a", "* * * * *")).ok());
}

TEST_F(SchedulerTest, AJobRunsItsMethodAtEachSlotInTheSchedulerSession) {
  ASSERT_TRUE(scheduler_->schedule(spec("every-minute", "* * * * *")).ok());
  run_for(59s);
  EXPECT_TRUE(host_.calls.empty());
  run_for(1s);
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(host_.calls[0].request.method, "cleanup");
  EXPECT_EQ(host_.calls[0].request.session_id, "scheduler");
  EXPECT_EQ(host_.calls[0].request.args, json::object({{"maxAge", 86400}}));
  finish_all();
  for (int minute = 2; minute <= 3; ++minute) {
    run_for(60s);
    EXPECT_EQ(host_.calls.size(), 1u);
    finish_all();
  }
  const JobState* job = scheduler_->find("every-minute");
  EXPECT_EQ(job->run_count, 3u);
  EXPECT_EQ(job->last_status, RunStatus::kOk);
  EXPECT_EQ(job->next_run, millis(kMonday + 4min));
  EXPECT_EQ(publisher_.events(),
            (std::vector<std::string>{"job-started", "job-completed", "job-started",
                                      "job-completed", "job-started", "job-completed"}));
}

TEST_F(SchedulerTest, EventsCarryTheSpecsFields) {
  ASSERT_TRUE(scheduler_->schedule(spec("j", "* * * * *")).ok());
  run_for(60s);
  host_.calls[0].observer->on_finish(CallOutcome::failure(CallStatus::kFailed, "disk full"));
  run_for(60s);
  host_.calls[1].observer->on_finish(CallOutcome::success(1));
  ASSERT_EQ(publisher_.messages.size(), 4u);
  const json::value& failed = publisher_.messages[1].second;
  EXPECT_EQ(failed.at("event"), "job-failed");
  EXPECT_EQ(failed.at("data").at("jobId"), "j");
  EXPECT_EQ(failed.at("data").at("method"), "cleanup");
  EXPECT_EQ(failed.at("data").at("error"), "disk full");
  const json::value& completed = publisher_.messages[3].second;
  EXPECT_EQ(completed.at("data").at("runCount"), 2);
  EXPECT_EQ(scheduler_->find("j")->last_status, RunStatus::kOk);
  auto history = scheduler_->history("j", 10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].status, RunStatus::kOk);
  EXPECT_EQ(history[1].status, RunStatus::kFailed);
  EXPECT_EQ(history[1].error, "disk full");
  EXPECT_EQ(store_.runs.size(), 2u);
}

TEST_F(SchedulerTest, AnOverlappingSlotIsSkippedAndRecorded) {
  ASSERT_TRUE(scheduler_->schedule(spec("slow", "* * * * *")).ok());
  run_for(60s);
  ASSERT_EQ(host_.calls.size(), 1u);
  run_for(60s);  // the first run is still running
  EXPECT_EQ(host_.calls.size(), 1u);
  auto history = scheduler_->history("slow", 10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].status, RunStatus::kSkipped);
  EXPECT_EQ(publisher_.events().back(), "job-skipped");
  const auto refused = scheduler_->run_now("slow");
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.reason, "job \"slow\" is running (overlap: skip)");
}

TEST_F(SchedulerTest, OverlapAllowRunsBoth) {
  JobSpec allow = spec("both", "* * * * *");
  allow.overlap = Overlap::kAllow;
  ASSERT_TRUE(scheduler_->schedule(allow).ok());
  run_for(120s);
  EXPECT_EQ(host_.calls.size(), 2u);
  EXPECT_EQ(scheduler_->running(), 2u);
}

TEST_F(SchedulerTest, AMissedSlotIsCaughtUpOnceByDefault) {
  ASSERT_TRUE(scheduler_->schedule(spec("daily", "0 3 * * *")).ok());
  // The machine sleeps through 3:00 on two days (the steady clock stops; the wall clock moves).
  clock_.jump_wall_clock(2 * 24h + 5h);
  scheduler_->tick();
  ASSERT_EQ(host_.calls.size(), 1u) << "one catch-up run, not two";
  auto history = scheduler_->history("daily", 10);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].trigger, Trigger::kCatchUp);
  EXPECT_EQ(history[0].scheduled_for, millis(kMonday + 2 * 24h + 3h)) << "the latest missed slot";
  EXPECT_EQ(scheduler_->find("daily")->next_run, millis(kMonday + 3 * 24h + 3h));
}

TEST_F(SchedulerTest, CatchUpSkipAndOldSlotsAreRecordedAsMissed) {
  JobSpec skip = spec("skip", "0 3 * * *");
  skip.catch_up = CatchUp::kSkip;
  ASSERT_TRUE(scheduler_->schedule(skip).ok());
  ASSERT_TRUE(scheduler_->schedule(spec("old", "0 3 * * 1")).ok());  // Mondays only
  clock_.jump_wall_clock(2 * 24h);  // Wednesday 00:00: Monday 3:00 is 45 h ago
  scheduler_->tick();
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_EQ(scheduler_->find("skip")->last_status, RunStatus::kMissed);
  EXPECT_EQ(scheduler_->find("old")->last_status, RunStatus::kMissed) << "older than 24 h";
}

TEST_F(SchedulerTest, AWallClockJumpBackDoesNotRepeatSlots) {
  ASSERT_TRUE(scheduler_->schedule(spec("m", "* * * * *")).ok());
  run_for(60s);
  finish_all();
  clock_.jump_wall_clock(-30min);
  run_for(120s);
  EXPECT_TRUE(host_.calls.empty()) << "the next slot stays ahead: no burst of repeated runs";
}

TEST_F(SchedulerTest, SecondsLevelJobsFireEverySecond) {
  JobSpec fast = spec("fast", "*/2 * * * * *");
  fast.overlap = Overlap::kAllow;
  ASSERT_TRUE(scheduler_->schedule(fast).ok());
  run_for(10s);
  EXPECT_EQ(host_.calls.size(), 5u);
}

TEST_F(SchedulerTest, NextWakeIsBoundedSoClockChangesAreNoticed) {
  ASSERT_TRUE(scheduler_->schedule(spec("yearly", "@yearly")).ok());
  auto wake = scheduler_->next_wake();
  ASSERT_TRUE(wake);
  EXPECT_EQ(*wake, clock_.steady() + 30s);
  EXPECT_FALSE(Scheduler({.photon_name = "x"}, clock_, &host_, store_, publisher_).next_wake());
}

TEST_F(SchedulerTest, UnscheduleAndReplace) {
  ASSERT_TRUE(scheduler_->schedule(spec("j", "0 * * * *")).ok());
  auto replaced = scheduler_->schedule(spec("j", "30 * * * *"));
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(*replaced.value, millis(kMonday + 30min));
  EXPECT_EQ(scheduler_->size(), 1u);
  EXPECT_TRUE(scheduler_->unschedule("j").ok());
  const auto again = scheduler_->unschedule("j");
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(again.reason, "no job \"j\"");
  EXPECT_EQ(store_.deleted, std::vector<std::string>{"j"});
}

TEST_F(SchedulerTest, RunNowRunsAtOnce) {
  ASSERT_TRUE(scheduler_->schedule(spec("j", "@yearly")).ok());
  auto run = scheduler_->run_now("j");
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(scheduler_->history("j", 1)[0].trigger, Trigger::kManual);
  EXPECT_EQ(scheduler_->run_now("nope").reason, "no job \"nope\"");
}

TEST_F(SchedulerTest, ARestartRestoresJobsAndCatchesUp) {
  ASSERT_TRUE(scheduler_->schedule(spec("hourly", "0 * * * *")).ok());
  run_for(3600s);
  ASSERT_EQ(host_.calls.size(), 1u);
  const std::uint64_t cut_short = scheduler_->history("hourly", 1)[0].run_id;
  host_.calls.clear();  // the daemon dies with the run in progress
  scheduler_.reset();

  clock_.jump_wall_clock(3h + 10min);  // down for three hours
  make_scheduler();
  std::vector<JobState> jobs;
  for (auto& [id, job] : store_.jobs) jobs.push_back(job);
  std::vector<JobRun> runs;
  for (auto& [id, run] : store_.runs) runs.push_back(run);
  scheduler_->restore(jobs, runs, cut_short);
  EXPECT_EQ(store_.runs[cut_short].status, RunStatus::kFailed) << "a run the crash cut short";
  // Its end is unknown: no end, no duration; when this start found it is recorded.
  EXPECT_FALSE(store_.runs[cut_short].ended_at);
  EXPECT_TRUE(store_.runs[cut_short].interrupted);
  EXPECT_EQ(store_.runs[cut_short].found_at, epoch_millis(clock_.system()));
  scheduler_->tick();
  ASSERT_EQ(host_.calls.size(), 1u);
  auto history = scheduler_->history("hourly", 10);
  EXPECT_EQ(history[0].trigger, Trigger::kCatchUp);
  EXPECT_GT(history[0].run_id, cut_short) << "run ids keep increasing across restarts";
}

// The SQLite store may commit a run's start in an earlier transaction than the job's next slot
// (the writer wakes between the two writes). A daemon killed in between restarts with the run
// recorded and next_run still at the run's slot: that slot must not run again.
TEST_F(SchedulerTest, ASlotWhoseRunWasRecordedIsNotRunAgainAfterAKill) {
  ASSERT_TRUE(scheduler_->schedule(spec("every", "* * * * * *")).ok());
  const JobState committed = store_.jobs.at("every");  // the job's row as the disk has it
  run_for(1s);
  ASSERT_EQ(host_.calls.size(), 1u);
  const JobRun started = scheduler_->history("every", 1)[0];
  ASSERT_EQ(started.scheduled_for, millis(kMonday + 1s));
  host_.calls.clear();  // SIGKILL: the run dies with the daemon
  scheduler_.reset();

  // Restarted at once, within the slot's second: the run's row, not the job's new next_run.
  make_scheduler();
  scheduler_->restore({committed}, {store_.runs.at(started.run_id)}, started.run_id);
  scheduler_->tick();
  EXPECT_TRUE(host_.calls.empty()) << "the slot of the interrupted run started again";
  auto history = scheduler_->history("every", 10);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].run_id, started.run_id);
  EXPECT_EQ(history[0].status, RunStatus::kFailed);
  EXPECT_TRUE(history[0].interrupted);
  const JobState* job = scheduler_->find("every");
  EXPECT_EQ(job->next_run, millis(kMonday + 2s)) << "the next run is the next slot";
  EXPECT_EQ(job->last_run, started.started_at);
  EXPECT_EQ(job->run_count, 1u);
  EXPECT_EQ(store_.jobs.at("every").next_run, millis(kMonday + 2s)) << "and it is saved";

  run_for(1s);
  ASSERT_EQ(host_.calls.size(), 1u);
  history = scheduler_->history("every", 10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].scheduled_for, millis(kMonday + 2s));
  EXPECT_EQ(history[0].trigger, Trigger::kSchedule);
  EXPECT_GT(history[0].run_id, started.run_id);
}

// The same kill, restarted after three slots passed: one run, for the latest of them.
TEST_F(SchedulerTest, AfterAKillThatLeftNextRunBehindTheSlotsMissedRunOnce) {
  ASSERT_TRUE(scheduler_->schedule(spec("every", "* * * * * *")).ok());
  const JobState committed = store_.jobs.at("every");
  run_for(1s);
  const JobRun started = scheduler_->history("every", 1)[0];
  host_.calls.clear();
  scheduler_.reset();

  clock_.advance(3s);
  make_scheduler();
  scheduler_->restore({committed}, {store_.runs.at(started.run_id)}, started.run_id);
  scheduler_->tick();
  ASSERT_EQ(host_.calls.size(), 1u);
  auto history = scheduler_->history("every", 10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].scheduled_for, millis(kMonday + 4s));
  EXPECT_EQ(history[0].trigger, Trigger::kSchedule);
  EXPECT_EQ(history[1].run_id, started.run_id);
  EXPECT_EQ(scheduler_->find("every")->next_run, millis(kMonday + 5s));
}

// A run names the method it called when it ends, whatever became of its job meanwhile; runCount
// is its job's count, 0 when it counts for no job (the job was unscheduled).
TEST_F(SchedulerTest, ARunEndsNamingTheMethodItCalled) {
  ASSERT_TRUE(scheduler_->schedule(spec("replaced", "* * * * *")).ok());
  run_for(60s);
  ASSERT_EQ(host_.calls.size(), 1u);
  ASSERT_TRUE(scheduler_->schedule(spec("replaced", "* * * * *", "report")).ok());
  finish_all();
  ASSERT_TRUE(scheduler_->schedule(spec("gone", "@yearly")).ok());
  ASSERT_TRUE(scheduler_->run_now("gone").ok());
  ASSERT_TRUE(scheduler_->unschedule("gone").ok());
  finish_all();
  ASSERT_TRUE(scheduler_->schedule(spec("failed", "@yearly")).ok());
  ASSERT_TRUE(scheduler_->run_now("failed").ok());
  ASSERT_TRUE(scheduler_->schedule(spec("failed", "@yearly", "report")).ok());
  finish_all(CallOutcome::failure(CallStatus::kFailed, "disk full"));

  std::vector<json::value> ends;
  for (const auto& [channel, message] : publisher_.messages) {
    if (message.at("event") != "job-started") ends.push_back(message.at("data"));
  }
  ASSERT_EQ(ends.size(), 3u);
  EXPECT_EQ(ends[0].at("jobId"), "replaced");
  EXPECT_EQ(ends[0].at("method"), "cleanup");
  EXPECT_EQ(ends[0].at("runCount"), 1);
  EXPECT_EQ(ends[1].at("jobId"), "gone");
  EXPECT_EQ(ends[1].at("method"), "cleanup");
  EXPECT_EQ(ends[1].at("runCount"), 0);
  EXPECT_EQ(ends[2].at("jobId"), "failed");
  EXPECT_EQ(ends[2].at("method"), "cleanup");
  EXPECT_EQ(ends[2].at("error"), "disk full");
  EXPECT_EQ(scheduler_->find("replaced")->run_count, 1u);
  // The next run of the replaced job calls, and names, its new method.
  run_for(60s);
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(host_.calls[0].request.method, "report");
  finish_all();
  EXPECT_EQ(publisher_.messages.back().second.at("data").at("method"), "report");
  EXPECT_EQ(publisher_.messages.back().second.at("data").at("runCount"), 2);
}

TEST_F(SchedulerTest, DeclaredJobsAreRestoredAndCannotBeUnscheduled) {
  JobSpec declared = spec("nightly", "0 2 * * *");
  scheduler_->declare({declared});
  const JobState* job = scheduler_->find("nightly");
  ASSERT_NE(job, nullptr);
  EXPECT_TRUE(job->spec.declared);
  EXPECT_EQ(scheduler_->unschedule("nightly").reason,
            "job \"nightly\" is declared by the photon and cannot be unscheduled");
  EXPECT_FALSE(scheduler_->schedule(spec("nightly", "* * * * *")).ok());
  JobSpec broken = spec("broken", "0 0 30 2 *");
  EXPECT_THROW(scheduler_->declare({broken}), CronError);
}

TEST_F(SchedulerTest, ChannelEmitsOfJobsArePublishedAndPromptsGetNoAnswer) {
  ASSERT_TRUE(scheduler_->schedule(spec("j", "* * * * *")).ok());
  run_for(60s);
  auto& observer = host_.calls[0].observer;
  observer->on_emit({{"channel", "board:main"}, {"event", "cleaned"}});
  observer->on_emit({{"percent", 50}});
  bool answered = false;
  observer->on_prompt({{"type", "confirm"}, {"message", "?"}},
                      [&](std::optional<json::value> value) { answered = !value; });
  EXPECT_TRUE(answered);
  ASSERT_EQ(publisher_.messages.size(), 2u);
  EXPECT_EQ(publisher_.messages[1].first, "board:main");
}

TEST_F(SchedulerTest, TimeZonesAndDst) {
  JobSpec new_york = spec("ny", "30 2 * * *");
  new_york.timezone = "America/New_York";
  // 2026-03-08 is the spring-forward day in New York: 02:30 does not exist that night.
  clock_.jump_wall_clock(std::chrono::sys_seconds(std::chrono::seconds(1772928000)) -
                         kMonday);  // 2026-03-08 00:00 UTC
  ASSERT_TRUE(scheduler_->schedule(new_york).ok());
  // 03:00 EDT = 07:00 UTC: the first instant after the gap.
  EXPECT_EQ(scheduler_->find("ny")->next_run,
            millis(std::chrono::sys_seconds(std::chrono::seconds(1772953200))));
}

// Each enum's spellings read back as the same value, and text no version wrote is refused.
TEST(JobWords, EverySpellingReadsBack) {
  for (auto value :
       {RunStatus::kRunning, RunStatus::kOk, RunStatus::kFailed, RunStatus::kTimedOut,
        RunStatus::kCancelled, RunStatus::kSkipped, RunStatus::kMissed, RunStatus::kInvalid}) {
    EXPECT_EQ(parse_run_status(to_string(value)), value) << to_string(value);
  }
  for (auto value : {Trigger::kSchedule, Trigger::kCatchUp, Trigger::kManual}) {
    EXPECT_EQ(parse_trigger(to_string(value)), value);
  }
  EXPECT_EQ(to_string(Trigger::kCatchUp), "catch-up");
  EXPECT_EQ(to_string(RunStatus::kTimedOut), "timed_out");
  EXPECT_EQ(parse_catch_up("skip"), CatchUp::kSkip);
  EXPECT_EQ(parse_catch_up(to_string(CatchUp::kLatest)), CatchUp::kLatest);
  EXPECT_EQ(parse_overlap("allow"), Overlap::kAllow);
  EXPECT_EQ(parse_overlap(to_string(Overlap::kSkip)), Overlap::kSkip);
  EXPECT_FALSE(parse_run_status("OK"));
  EXPECT_FALSE(parse_trigger(""));
  EXPECT_FALSE(parse_overlap("never"));
}

}  // namespace
}  // namespace photon::core

namespace photon::core {
namespace {

// Slots claimed through FireClaims (the Redis broker's per-slot key): only a won slot is handled.
class ScriptedClaims final : public FireClaims {
 public:
  void claim(const std::string& job_id, EpochMillis slot, bool exclusive,
             std::function<void(ClaimOutcome)> done) override {
    auto won = [done](bool won) { done(won ? ClaimOutcome::kWon : ClaimOutcome::kLost); };
    claims.push_back({job_id, slot, exclusive, std::move(won), std::move(done)});
  }
  void end_exclusive_run(const std::string& job_id) override { ended.push_back(job_id); }
  struct Claim {
    std::string job_id;
    EpochMillis slot;
    bool exclusive;
    std::function<void(bool)> done;
    std::function<void(ClaimOutcome)> answer;
  };
  std::vector<Claim> claims;
  std::vector<std::string> ended;
};

TEST_F(SchedulerTest, WithClaimsOnlyAWonSlotRuns) {
  ScriptedClaims claims;
  scheduler_->set_claims(&claims);
  ASSERT_TRUE(scheduler_->schedule(spec("every", "* * * * * *")).ok());
  run_for(1s);
  ASSERT_EQ(claims.claims.size(), 1u);
  EXPECT_EQ(claims.claims[0].job_id, "every");
  EXPECT_EQ(claims.claims[0].slot, millis(kMonday + 1s));
  EXPECT_TRUE(host_.calls.empty());  // nothing runs before the claim is decided
  claims.claims[0].done(false);      // another daemon has it
  EXPECT_TRUE(host_.calls.empty());
  run_for(1s);
  ASSERT_EQ(claims.claims.size(), 2u);
  EXPECT_EQ(claims.claims[1].slot, millis(kMonday + 2s));
  claims.claims[1].done(true);
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(store_.runs.rbegin()->second.scheduled_for, millis(kMonday + 2s));
  EXPECT_EQ(publisher_.events(), std::vector<std::string>{"job-started"});
}

TEST_F(SchedulerTest, AClaimDecidedAfterTheJobWentRunsNothing) {
  ScriptedClaims claims;
  scheduler_->set_claims(&claims);
  ASSERT_TRUE(scheduler_->schedule(spec("every", "* * * * * *")).ok());
  run_for(1s);
  ASSERT_EQ(claims.claims.size(), 1u);
  scheduler_->forget("every");
  claims.claims[0].done(true);
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_EQ(scheduler_->size(), 0u);
}

TEST_F(SchedulerTest, AnExclusiveRunHoldsItsJobUntilItEndsAndASlotWonWhileItRunsIsSkipped) {
  ScriptedClaims claims;
  scheduler_->set_claims(&claims);
  ASSERT_TRUE(scheduler_->schedule(spec("every", "* * * * * *")).ok());
  run_for(1s);
  ASSERT_EQ(claims.claims.size(), 1u);
  EXPECT_TRUE(claims.claims[0].exclusive);  // overlap "skip"
  claims.claims[0].answer(ClaimOutcome::kWon);
  ASSERT_EQ(host_.calls.size(), 1u);
  ASSERT_FALSE(store_.updates.empty());
  EXPECT_EQ(store_.updates.back().second.last_run, millis(kMonday + 1s));
  EXPECT_EQ(store_.updates.back().second.runs_ended, 0u);
  // The next slot, won while the job runs on another daemon: skipped, and nothing to free.
  run_for(1s);
  ASSERT_EQ(claims.claims.size(), 2u);
  claims.claims[1].answer(ClaimOutcome::kWonWhileRunning);
  EXPECT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(scheduler_->history("every", 1)[0].status, RunStatus::kSkipped);
  EXPECT_EQ(store_.updates.back().second.last_status, RunStatus::kSkipped);
  EXPECT_TRUE(claims.ended.empty());
  // The run ends: its record first, then the job is freed.
  finish_all();
  EXPECT_EQ(store_.updates.back().second.runs_ended, 1u);
  EXPECT_EQ(store_.updates.back().second.last_status, RunStatus::kOk);
  EXPECT_EQ(claims.ended, std::vector<std::string>{"every"});
}

TEST_F(SchedulerTest, AHeldClaimThatStartsNoRunIsFreedAtOnce) {
  ScriptedClaims claims;
  scheduler_->set_claims(&claims);
  ASSERT_TRUE(scheduler_->schedule(spec("every", "* * * * * *")).ok());
  ASSERT_TRUE(scheduler_->run_now("every").ok());  // a manual run holds nothing in Redis
  run_for(1s);
  ASSERT_EQ(claims.claims.size(), 1u);
  claims.claims[0].answer(ClaimOutcome::kWon);
  EXPECT_EQ(host_.calls.size(), 1u);  // skipped: the manual run still runs here
  EXPECT_EQ(claims.ended, std::vector<std::string>{"every"});
  // Overlap "allow": claims are not exclusive.
  JobSpec allow = spec("allow", "* * * * * *");
  allow.overlap = Overlap::kAllow;
  ASSERT_TRUE(scheduler_->schedule(allow).ok());
  run_for(1s);
  const auto of_allow =
      std::find_if(claims.claims.begin(), claims.claims.end(),
                   [](const ScriptedClaims::Claim& c) { return c.job_id == "allow"; });
  ASSERT_NE(of_allow, claims.claims.end());
  EXPECT_FALSE(of_allow->exclusive);
}

TEST_F(SchedulerTest, ARunEndingAfterItsJobWentFreesTheJobAndRecordsNothing) {
  ScriptedClaims claims;
  scheduler_->set_claims(&claims);
  ASSERT_TRUE(scheduler_->schedule(spec("every", "* * * * * *")).ok());
  run_for(1s);
  claims.claims[0].answer(ClaimOutcome::kWon);
  ASSERT_EQ(host_.calls.size(), 1u);
  scheduler_->forget("every");  // removed on another daemon
  const std::size_t updates = store_.updates.size();
  finish_all();
  EXPECT_EQ(store_.updates.size(), updates);
  EXPECT_EQ(claims.ended, std::vector<std::string>{"every"});
}

TEST_F(SchedulerTest, AdoptTakesAnotherDaemonsJobWithoutPersistingIt) {
  JobState shared;
  shared.spec = spec("hourly", "0 * * * *");
  shared.run_count = 4;
  shared.last_status = RunStatus::kOk;
  scheduler_->adopt(shared);
  EXPECT_TRUE(store_.jobs.empty());
  const JobState* job = scheduler_->find("hourly");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->next_run, millis(kMonday + 1h));
  EXPECT_EQ(job->run_count, 4u);
  // A newer record keeps the next slot when the schedule did not change, recomputes it when it did.
  shared.run_count = 5;
  clock_.advance(10min);
  scheduler_->adopt(shared);
  EXPECT_EQ(scheduler_->find("hourly")->next_run, millis(kMonday + 1h));
  EXPECT_EQ(scheduler_->find("hourly")->run_count, 5u);
  shared.spec.cron = "30 * * * *";
  scheduler_->adopt(shared);
  EXPECT_EQ(scheduler_->find("hourly")->next_run, millis(kMonday + 30min));
  // A method this daemon lacks: kept, listed as invalid, never fired here.
  JobState foreign;
  foreign.spec = spec("other", "* * * * *", "elsewhere");
  scheduler_->adopt(foreign);
  EXPECT_EQ(scheduler_->find("other")->last_status, RunStatus::kInvalid);
  EXPECT_FALSE(scheduler_->find("other")->next_run);
  scheduler_->forget("hourly");
  EXPECT_EQ(scheduler_->find("hourly"), nullptr);
  EXPECT_TRUE(store_.deleted.empty());
}

// A zone that cannot be loaded now (no descriptor left) is a refusal with the reason, remembered
// nowhere: the next schedule looks the zone up again and succeeds.
TEST_F(SchedulerTest, AZoneThatCannotBeLoadedNowIsRefusedAndTriedAgain) {
  zones_down_ = true;
  const auto refused = scheduler_->schedule(spec("hourly", "0 * * * *"));
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.reason.find("cannot be loaded now"), std::string::npos) << refused.reason;
  EXPECT_EQ(scheduler_->size(), 0u);
  EXPECT_TRUE(store_.jobs.empty());
  const auto again = scheduler_->schedule(spec("hourly", "0 * * * *"));
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(zone_lookups_, 2);  // looked up each time

  zones_down_ = false;
  const auto accepted = scheduler_->schedule(spec("hourly", "0 * * * *"));
  ASSERT_TRUE(accepted.ok()) << accepted.reason;
  EXPECT_EQ(*accepted.value, millis(kMonday + 1h));
  EXPECT_TRUE(store_.jobs.contains("hourly"));
  // An unknown zone stays a refusal of its own kind.
  JobSpec mars = spec("mars", "0 * * * *");
  mars.timezone = "Mars/Base";
  EXPECT_NE(scheduler_->schedule(mars).reason.find("Invalid time zone"), std::string::npos);
}

// A job restored (or declared) while its zone cannot be loaded keeps its next run, is not marked
// invalid, fires nothing meanwhile, is retried every zone_retry (not in a busy loop), and once the
// zone loads it fires: the slot it missed meanwhile by the catch-up policy, then on schedule.
TEST_F(SchedulerTest, ARestoredJobWhoseZoneCannotBeLoadedIsRetriedAndFires) {
  ASSERT_TRUE(scheduler_->schedule(spec("hourly", "0 * * * *")).ok());
  const EpochMillis next = *scheduler_->find("hourly")->next_run;
  scheduler_.reset();

  zones_down_ = true;
  make_scheduler();
  std::vector<JobState> jobs;
  for (auto& [id, job] : store_.jobs) jobs.push_back(job);
  scheduler_->restore(jobs, {}, 0);
  const JobState* restored = scheduler_->find("hourly");
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(restored->next_run, next) << "nextRun is null only for an expression that cannot fire";
  EXPECT_NE(restored->last_status, RunStatus::kInvalid);
  // Retried every second, never in a busy loop.
  const auto wake = scheduler_->next_wake();
  ASSERT_TRUE(wake);
  EXPECT_EQ(*wake - clock_.steady(), std::chrono::steady_clock::duration(1s));
  const int lookups = zone_lookups_;
  run_for(1h + 5min);  // past the 1 h slot
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_EQ(zone_lookups_ - lookups, 3900) << "one attempt per retry";

  zones_down_ = false;
  run_for(1s);
  ASSERT_EQ(host_.calls.size(), 1u) << "the missed slot, caught up";
  EXPECT_EQ(scheduler_->history("hourly", 1)[0].trigger, Trigger::kCatchUp);
  EXPECT_EQ(scheduler_->find("hourly")->next_run, millis(kMonday + 2h));
  finish_all();
  run_for(1h);
  EXPECT_EQ(host_.calls.size(), 1u) << "then on schedule";
  EXPECT_EQ(scheduler_->history("hourly", 1)[0].trigger, Trigger::kSchedule);
}

// Nothing accepted is lost: while the persistence cannot keep a job, schedule is refused with its
// reason; the next one is accepted once it can.
TEST_F(SchedulerTest, AJobIsOnlyAcceptedWhenItCanBeKept) {
  store_.unavailable_reason =
      "jobs cannot be saved now (cannot open demo.db: Too many open files); try again";
  const auto refused = scheduler_->schedule(spec("hourly", "0 * * * *"));
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.reason, *store_.unavailable_reason);
  EXPECT_EQ(scheduler_->size(), 0u);
  store_.unavailable_reason.reset();
  EXPECT_TRUE(scheduler_->schedule(spec("hourly", "0 * * * *")).ok());
  EXPECT_TRUE(store_.jobs.contains("hourly"));
}

}  // namespace
}  // namespace photon::core
