// The Redis broker's jobs: slots claimed once across daemons, leases on running jobs, definitions
// and records shared (and written back after an outage or a Redis that lost its data), and the
// history of finished runs. Scripts: src/broker/lua/.
#include "broker/lua_scripts.hpp"
#include "broker/redis_broker.hpp"
#include "broker/redis_reply.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <set>
#include <utility>

namespace photon::broker {
namespace json = boost::json;
namespace {

// A daemon that dies mid-run holds its job for this long at most; a live one renews it.
constexpr std::chrono::milliseconds kRunLease{30'000};
constexpr std::chrono::milliseconds kRunLeaseRenewal{10'000};

json::value millis_or_null(const std::optional<core::EpochMillis>& millis) {
  return millis ? json::value(*millis) : json::value(nullptr);
}

// A job's definition as stored in photon:NAME:jobs: what schedule (or a declaration) says, and
// nothing its runs change, so that equal definitions are equal strings.
std::string definition_json(const core::JobSpec& spec) {
  return json::serialize(json::object{{"id", spec.id},
                                      {"method", spec.method},
                                      {"args", spec.args},
                                      {"cron", spec.cron},
                                      {"timezone", spec.timezone},
                                      {"catchUp", core::to_string(spec.catch_up)},
                                      {"overlap", core::to_string(spec.overlap)},
                                      {"createdBy", spec.created_by},
                                      {"declared", spec.declared}});
}

// A definition as definition_json wrote it; nothing when it is not one (written by something else).
std::optional<core::JobState> parse_definition(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const json::object& object = value.get_object();
  auto string = [&](const char* key) {
    const json::value* found = object.if_contains(key);
    return found != nullptr && found->is_string() ? std::string(found->get_string())
                                                  : std::string();
  };
  core::JobState job;
  job.spec.id = string("id");
  job.spec.method = string("method");
  job.spec.cron = string("cron");
  if (job.spec.id.empty() || job.spec.cron.empty()) return std::nullopt;
  if (const json::value* args = object.if_contains("args"); args != nullptr && args->is_object()) {
    job.spec.args = args->get_object();
  }
  job.spec.timezone = string("timezone");
  job.spec.catch_up = core::parse_catch_up(string("catchUp")).value_or(core::CatchUp::kLatest);
  job.spec.overlap = core::parse_overlap(string("overlap")).value_or(core::Overlap::kSkip);
  job.spec.created_by = string("createdBy");
  const json::value* declared = object.if_contains("declared");
  job.spec.declared = declared != nullptr && declared->is_bool() && declared->get_bool();
  return job;
}

// A job as the read scripts return it, from `row->element[first]` on: definition, createdAt,
// runCount, lastRun, lastStatus, lastError (record fields may be missing).
std::optional<core::JobState> job_of(const redisReply* row, std::size_t first) {
  if (row->type != REDIS_REPLY_ARRAY || row->elements < first + 6) return std::nullopt;
  redisReply* const* field = row->element + first;
  auto job = parse_definition(text_of(field[0]));
  if (!job) return std::nullopt;
  job->created_at = integer_in(field[1]).value_or(0);
  job->run_count =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, integer_in(field[2]).value_or(0)));
  job->last_run = integer_in(field[3]);
  job->last_status = core::parse_run_status(text_of(field[4]));
  job->last_error = std::string(text_of(field[5]));
  return job;
}

}  // namespace

void RedisBroker::note_local_write(const std::string& id) {
  if (reads_in_flight_ > 0) local_writes_[id] = ++local_write_count_;
}

bool RedisBroker::written_here_since(const std::string& id, std::uint64_t read_sent_at) const {
  const auto it = local_writes_.find(id);
  return it != local_writes_.end() && it->second > read_sent_at;
}

void RedisBroker::read_done() {
  // With no read in flight no answer can be stale: the marks are needed no longer.
  if (--reads_in_flight_ == 0) local_writes_.clear();
}

void RedisBroker::read_job(const std::string& id) {
  ++reads_in_flight_;
  const std::uint64_t sent_at = local_write_count_;
  commands_->command(
      {"EVAL", std::string(lua::read_job()), "2", prefix_ + "jobs", record_key(id), id},
      [this, id, sent_at](const redisReply* reply, const std::string&) {
        // Written here after this read was sent: Redis ran the read first, so
        // its answer predates this daemon's own newer write; dropped.
        const bool stale = written_here_since(id, sent_at);
        read_done();
        if (reply == nullptr || scheduler_ == nullptr) return;
        // Read again: the new read comes after the write, and still brings what
        // other daemons changed (a run count, say).
        if (stale) return read_job(id);
        if (reply->type == REDIS_REPLY_NIL) {
          scheduler_->forget(id);
        } else if (auto job = job_of(reply, 0)) {
          scheduler_->adopt(std::move(*job));
        }
        if (listener_ != nullptr) listener_->shared_state_changed();
      });
}

void RedisBroker::claim(const std::string& job_id, core::EpochMillis slot, bool exclusive,
                        std::function<void(core::ClaimOutcome)> done) {
  commands_->command({"EVAL", std::string(lua::claim()), "3", prefix_ + "fired:" + job_id,
                      running_key(job_id), prefix_ + "jobs", std::to_string(slot), instance_id_,
                      exclusive ? "1" : "0", std::to_string(kRunLease.count()), job_id},
                     [this, job_id, exclusive, done = std::move(done)](const redisReply* reply,
                                                                       const std::string&) {
                       // Unreachable or refused: not ours (the slot runs once or not at all).
                       const std::int64_t code = reply != nullptr ? integer_of(reply) : 0;
                       // No answer: Redis may have run the claim and given this daemon the job's
                       // running key, which nothing here would free; freed on reconnect.
                       if (reply == nullptr && exclusive) running_keys_to_free_.insert(job_id);
                       if (code == 1 && exclusive) {
                         exclusive_runs_.insert(job_id);
                         renew_runs_later();
                       }
                       done(code == 1   ? core::ClaimOutcome::kWon
                            : code == 2 ? core::ClaimOutcome::kWonWhileRunning
                                        : core::ClaimOutcome::kLost);
                     });
}

void RedisBroker::end_exclusive_run(const std::string& job_id) {
  exclusive_runs_.erase(job_id);
  // Unanswered (Redis away): freed when it is back (or by the lease, whichever comes first).
  commands_->command({"EVAL", std::string(lua::end_run()), "1", running_key(job_id), instance_id_},
                     [this, job_id](const redisReply* reply, const std::string&) {
                       if (reply == nullptr) running_keys_to_free_.insert(job_id);
                     });
}

void RedisBroker::renew_runs_later() {
  if (renewing_ || exclusive_runs_.empty()) return;
  renewing_ = true;
  renew_timer_.expires_after(kRunLeaseRenewal);
  renew_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    renewing_ = false;
    renew_runs();
    renew_runs_later();
  });
}

void RedisBroker::renew_runs() {
  for (const std::string& id : exclusive_runs_) {
    commands_->command(
        {"EVAL", std::string(lua::renew_run()), "1", running_key(id), instance_id_,
         std::to_string(kRunLease.count())},
        [this, id](const redisReply* reply, const std::string&) {
          // Only a "not the holder" answer means the hold is gone; an error (a failover's
          // READONLY, LOADING) or no answer says nothing, and the next renewal tries again.
          const bool lost =
              reply != nullptr && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0;
          if (!lost || exclusive_runs_.erase(id) == 0) return;
          spdlog::warn(
              "broker: job {} is still running here, but its hold on it in redis ended "
              "(redis away longer than {} s?): another daemon may start it meanwhile",
              id, std::chrono::duration_cast<std::chrono::seconds>(kRunLease).count());
        });
  }
}

void RedisBroker::save_job(const core::JobState& job) { write_job(job.spec.id, job); }

void RedisBroker::delete_job(const std::string& id) { write_job(id, std::nullopt); }

void RedisBroker::write_job(const std::string& id, std::optional<core::JobState> job) {
  note_local_write(id);
  if (commands_->state() != LinkState::kReady) {
    pending_jobs_.insert_or_assign(id, std::move(job));
    return;
  }
  send_job_write(id, std::move(job));
}

void RedisBroker::send_job_write(const std::string& id, std::optional<core::JobState> job) {
  std::vector<std::string> command;
  if (job) {
    command = {"EVAL",
               std::string(lua::put_job()),
               "2",
               prefix_ + "jobs",
               record_key(id),
               id,
               definition_json(job->spec),
               channel_prefix_ + "jobs",
               job_notice(id),
               std::to_string(job->created_at),
               std::to_string(job->run_count),
               job->last_run ? std::to_string(*job->last_run) : std::string(),
               job->last_status ? std::string(core::to_string(*job->last_status)) : "",
               job->last_error};
  } else {
    command = {"EVAL",
               std::string(lua::delete_job()),
               "4",
               prefix_ + "jobs",
               record_key(id),
               prefix_ + "fired:" + id,
               prefix_ + "runs:" + id,
               id,
               channel_prefix_ + "jobs",
               job_notice(id)};
  }
  commands_->command(std::move(command),
                     [this, id, job = std::move(job)](const redisReply* reply, const std::string&) {
                       // Lost with the connection or refused (a failover's READONLY drops the
                       // connection too): written again when Redis is back, unless a newer write
                       // waits.
                       if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
                         if (reply != nullptr) {
                           spdlog::warn(
                               "broker: redis refused to write job {} ({}); written again "
                               "when the connection to redis is made again",
                               id, text_of(reply));
                         }
                         pending_jobs_.emplace(id, job);
                       }
                     });
}

void RedisBroker::update_record(const core::JobState& job, const core::RecordUpdate& update) {
  if (commands_->state() != LinkState::kReady) {
    core::RecordUpdate& pending = pending_records_[job.spec.id];
    pending.runs_ended += update.runs_ended;
    if (update.last_run && (!pending.last_run || *pending.last_run < *update.last_run)) {
      pending.last_run = update.last_run;
    }
    if (update.last_status) pending.last_status = update.last_status;
    if (update.last_error) pending.last_error = update.last_error;
    return;
  }
  send_record_update(job.spec.id, update);
  // The record as every daemon now has it (their runs count too).
  read_job(job.spec.id);
}

void RedisBroker::send_record_update(const std::string& id, const core::RecordUpdate& update) {
  std::vector<std::string> command{
      "EVAL",
      std::string(lua::update_record()),
      "2",
      prefix_ + "jobs",
      record_key(id),
      id,
      std::to_string(update.runs_ended),
      update.last_run ? std::to_string(*update.last_run) : std::string(),
      channel_prefix_ + "jobs",
      job_notice(id)};
  if (update.last_status) {
    command.insert(command.end(),
                   {"lastStatus", std::string(core::to_string(*update.last_status))});
  }
  if (update.last_error) command.insert(command.end(), {"lastError", *update.last_error});
  // At most once: an update whose answer was lost may have been applied, so it is not repeated.
  commands_->command(std::move(command), [](const redisReply*, const std::string&) {});
}

void RedisBroker::save_run(const core::JobRun& run) {
  // A run is shared once it has ended; one running is seen on the daemon that runs it.
  if (run.status == core::RunStatus::kRunning || commands_->state() != LinkState::kReady) return;
  json::object entry{{"runId", run.run_id},
                     {"trigger", core::to_string(run.trigger)},
                     {"scheduledFor", run.scheduled_for},
                     {"startedAt", run.started_at},
                     {"endedAt", millis_or_null(run.ended_at)},
                     {"durationMs", run.ended_at ? json::value(*run.ended_at - run.started_at)
                                                 : json::value(nullptr)},
                     {"status", core::to_string(run.status)},
                     {"error", run.error},
                     {"interrupted", run.interrupted},
                     {"foundAt", millis_or_null(run.found_at)},
                     {"daemon", instance_id_}};
  commands_->command(
      {"EVAL", std::string(lua::push_run()), "2", prefix_ + "jobs", prefix_ + "runs:" + run.job_id,
       run.job_id, json::serialize(entry), std::to_string(options_.history_per_job)},
      [](const redisReply*, const std::string&) {});
}

void RedisBroker::job_history(const std::string& job_id, std::size_t limit,
                              std::function<void(boost::json::array, std::string)> done) {
  const std::size_t count = std::min(limit, options_.history_per_job);
  if (count == 0) {
    return boost::asio::post(loop_, [done = std::move(done)] { done({}, {}); });
  }
  commands_->command(
      {"LRANGE", prefix_ + "runs:" + job_id, "0", std::to_string(count - 1)},
      [done = std::move(done), count](const redisReply* reply, const std::string& error) {
        json::array runs;
        if (auto why = failure(reply, error)) return done(std::move(runs), *why);
        for (std::size_t i = 0;
             reply->type == REDIS_REPLY_ARRAY && i < reply->elements && runs.size() < count; ++i) {
          boost::system::error_code ec;
          json::value run = json::parse(text_of(reply->element[i]), ec);
          if (!ec && run.is_object()) runs.push_back(std::move(run));
        }
        done(std::move(runs), {});
      });
}

void RedisBroker::sync_jobs() {
  // Holds on running jobs first: an outage shorter than their lease keeps them.
  renew_runs();
  // Running keys this daemon may hold for no run (a claim or an end of run got no answer): freed,
  // if they are still its own.
  for (const std::string& id : std::exchange(running_keys_to_free_, {})) {
    if (!exclusive_runs_.contains(id)) {
      commands_->command({"EVAL", std::string(lua::end_run()), "1", running_key(id), instance_id_},
                         [](const redisReply*, const std::string&) {});
    }
  }
  commands_->command({"EVAL", std::string(lua::epoch()), "1", prefix_ + "epoch", random_id()},
                     [this](const redisReply* reply, const std::string&) {
                       if (reply == nullptr || reply->type != REDIS_REPLY_STRING) return;
                       const std::string epoch(text_of(reply));
                       // Owed until a read of every job has been answered and written the jobs
                       // back: a later sync's epoch (the same new one) does not cancel it.
                       if (!epoch_.empty() && epoch != epoch_) {
                         data_lost_ = true;
                         spdlog::warn(
                             "broker: redis at {} lost its data (restarted without persistence?); "
                             "writing this daemon's jobs back",
                             options_.url.redacted());
                       }
                       epoch_ = epoch;
                     });
  // What was written here while Redis was away goes first, in that order: definitions (each wins
  // over what others wrote meanwhile, as if it had been written last), then the records, which
  // change only jobs that still exist (a job removed elsewhere meanwhile stays removed).
  auto pending = std::move(pending_jobs_);
  pending_jobs_.clear();
  for (auto& [id, job] : pending) send_job_write(id, std::move(job));
  auto records = std::move(pending_records_);
  pending_records_.clear();
  for (const auto& [id, update] : records) send_record_update(id, update);
  ++reads_in_flight_;
  const std::uint64_t sent_at = local_write_count_;
  commands_->command(
      {"EVAL", std::string(lua::read_jobs()), "1", prefix_ + "jobs", prefix_ + "job:"},
      [this, sent_at](const redisReply* reply, const std::string&) {
        struct ReadDone {
          RedisBroker* broker;
          ~ReadDone() { broker->read_done(); }
        } read_done_at_exit{this};
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || scheduler_ == nullptr) return;
        std::set<std::string> shared;
        for (std::size_t i = 0; i < reply->elements; ++i) {
          const redisReply* row = reply->element[i];
          if (row->type != REDIS_REPLY_ARRAY || row->elements == 0) continue;
          std::string id(text_of(row->element[0]));
          // Written here since the read was sent: this daemon's own version is the newer one.
          const bool newer_here = written_here_since(id, sent_at);
          shared.insert(std::move(id));
          if (newer_here) continue;
          if (auto job = job_of(row, 1)) scheduler_->adopt(std::move(*job));
        }
        // Jobs the others removed while this daemon was away go; the photon's own are written back,
        // and all of them when Redis lost its data (nobody removed them then). A job written here
        // since this read was sent is absent from its answer for that reason alone: kept. (Syncs
        // overlap: each connection made again starts one, and the first answer's write-backs go
        // after the second read.)
        const bool write_back_all = std::exchange(data_lost_, false);
        std::vector<std::string> gone;
        for (const core::JobState* job : scheduler_->jobs()) {
          if (shared.contains(job->spec.id) || written_here_since(job->spec.id, sent_at) ||
              pending_jobs_.contains(job->spec.id)) {
            continue;
          }
          if (job->spec.declared || write_back_all) {
            save_job(*job);
          } else {
            gone.push_back(job->spec.id);
          }
        }
        for (const std::string& id : gone) scheduler_->forget(id);
        if (listener_ != nullptr) listener_->shared_state_changed();
      });
}

}  // namespace photon::broker
