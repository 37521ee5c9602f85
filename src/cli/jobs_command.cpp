// The jobs commands over list_jobs, schedule, unschedule, job_history and run_job; run-job --wait
// follows the run on the jobs channel until it ends.
#include "cli/jobs_command.hpp"

#include "cli/call_command.hpp"
#include "cli/connect.hpp"
#include "cli/exit_codes.hpp"
#include "cli/print.hpp"
#include "cli/table.hpp"
#include "jobs/cron.hpp"
#include "photon/client.hpp"

#include <date/tz.h>
#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace photon::cli {
namespace {

// `millis` (epoch milliseconds) as "2026-11-27 09:00:00 +0100"; "-" when it is not a number.
std::string local_time(const boost::json::value& millis) {
  if (!millis.is_number()) return "-";
  const std::chrono::sys_seconds when =
      std::chrono::floor<std::chrono::seconds>(std::chrono::sys_time<std::chrono::milliseconds>(
          std::chrono::milliseconds(millis.to_number<long long>())));
  return date::format("%F %T %z", date::make_zoned(&photon::core::cron_zone(""), when));
}

// "2026-11-27 09:00:00 +0100 (in 5h 3m)".
std::string local_time_from_now(const boost::json::value& millis) {
  if (!millis.is_number()) return "-";
  const std::chrono::system_clock::time_point when{
      std::chrono::milliseconds(millis.to_number<long long>())};
  return local_time(millis) + " (" + from_now(when) + ")";
}

// The string member `key` of `object`; empty when it is missing or not a string.
std::string_view text_field(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string_view(value->get_string())
                                                : std::string_view();
}

// `text` on one line for a table cell, cut to about `width` bytes (an ellipsis marks the cut,
// never inside a UTF-8 sequence).
std::string one_line(std::string_view text, std::size_t width) {
  std::string line;
  for (const char c : text) line += c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
  while (!line.empty() && line.back() == ' ') line.pop_back();
  if (line.size() <= width) return line;
  std::size_t cut = width;
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return line.substr(0, cut) + "…";
}

// A request the daemon refused (`success: false` or an error): the reason on stderr, and `data`
// (with the reason) on stdout with --json. Returns the exit status.
int job_refused(const Globals& globals, boost::json::object data, const std::string& reason) {
  if (globals.json) {
    data["reason"] = reason;
    print_json(data);
  }
  std::cerr << "photonctl: " << reason << "\n";
  return kExitFailed;
}

// Sends a job request; nothing when the daemon refused it (a ClientError of kind kRefused, whose
// message is the reason, goes to `reason`).
std::optional<boost::json::value> job_request(photon::Client& client, boost::json::object request,
                                              std::string& reason) {
  try {
    return client.request(std::move(request));
  } catch (const ClientError& error) {
    if (error.kind() != ClientError::Kind::kRefused) throw;
    reason = error.what();
    return std::nullopt;
  }
}

void check_job_id(const std::string& job_id) {
  if (job_id.empty()) throw UsageError("JOBID must not be empty");
}

int cmd_jobs(const Globals& globals, const std::string& name) {
  const boost::json::value data = connect(name).request({{"type", "list_jobs"}});
  if (globals.json) {
    print_json(data);
    return kExitOk;
  }
  const boost::json::array& jobs = data.at("jobs").as_array();
  if (jobs.empty()) {
    std::cout << "no jobs on " << name << "\n";
    return kExitOk;
  }
  constexpr std::size_t kErrorWidth = 40;
  photon::cli::Table table({"ID", "CRON", "METHOD", "NEXT RUN", "LAST RUN", "RUNS", "LAST STATUS"});
  for (const auto& entry : jobs) {
    const boost::json::object& job = entry.as_object();
    std::string cron(text_field(job, "cron"));
    if (const auto zone = text_field(job, "timezone"); !zone.empty()) {
      cron += " (" + std::string(zone) + ")";
    }
    const boost::json::value& next = job.at("nextRun");
    const boost::json::value& last = job.at("lastRun");
    std::string status(text_field(job, "lastStatus"));
    if (const auto error = text_field(job, "lastError"); !error.empty()) {
      status += ": " + one_line(error, kErrorWidth);
    }
    table.add_row({std::string(text_field(job, "id")), cron, std::string(text_field(job, "method")),
                   next.is_number() ? local_time_from_now(next) : "never",
                   last.is_number() ? from_now(std::chrono::system_clock::time_point{
                                          std::chrono::milliseconds(last.to_number<long long>())})
                                    : "never",
                   boost::json::serialize(job.at("runCount")), status.empty() ? "-" : status});
  }
  table.print(std::cout);
  return kExitOk;
}

// What `schedule` asks for, as the command line gives it.
struct ScheduleFlags {
  std::string job_id;
  std::string method;
  std::string cron;
  std::vector<std::string> pairs;
  std::optional<std::string> args_json;
  std::optional<std::string> zone;
  std::optional<std::string> catch_up;
  std::optional<std::string> overlap;
};

int cmd_schedule(const Globals& globals, const std::string& name, const ScheduleFlags& flags) {
  check_name(name);
  check_job_id(flags.job_id);
  if (flags.method.empty()) throw UsageError("METHOD must not be empty");
  boost::json::object request{{"type", "schedule"},
                              {"jobId", flags.job_id},
                              {"method", flags.method},
                              {"cron", flags.cron}};
  if (flags.args_json || !flags.pairs.empty()) {
    request["args"] = call_args(flags.pairs, flags.args_json);
  }
  if (flags.zone) request["timezone"] = *flags.zone;
  if (flags.catch_up) request["catchUp"] = *flags.catch_up;
  if (flags.overlap) request["overlap"] = *flags.overlap;
  photon::Client client = connect(name);
  std::string reason;
  const auto data = job_request(client, std::move(request), reason);
  if (!data) return job_refused(globals, {{"scheduled", false}, {"jobId", flags.job_id}}, reason);
  if (globals.json) {
    print_json(*data);
    return kExitOk;
  }
  const boost::json::value* next = data->as_object().if_contains("nextRun");
  std::cout << "scheduled " << flags.job_id << ": "
            << (next != nullptr && next->is_number() ? "next run " + local_time_from_now(*next)
                                                     : std::string("it has no future run"))
            << "\n";
  return kExitOk;
}

int cmd_unschedule(const Globals& globals, const std::string& name, const std::string& job_id) {
  check_name(name);
  check_job_id(job_id);
  photon::Client client = connect(name);
  std::string reason;
  const auto data = job_request(client, {{"type", "unschedule"}, {"jobId", job_id}}, reason);
  if (!data) return job_refused(globals, {{"unscheduled", false}, {"jobId", job_id}}, reason);
  if (globals.json)
    print_json(*data);
  else
    std::cout << "unscheduled " << job_id << "\n";
  return kExitOk;
}

// The duration of a history entry: "1.2s"-like, "-" for a slot that did not run, "unknown" for a
// run cut short by a crash (its end was never seen), "running".
std::string run_duration(const boost::json::object& run) {
  const std::string_view status = text_field(run, "status");
  if (status == "skipped" || status == "missed") return "-";
  if (const boost::json::value* interrupted = run.if_contains("interrupted");
      interrupted != nullptr && interrupted->is_bool() && interrupted->get_bool()) {
    return "unknown";
  }
  const boost::json::value* millis = run.if_contains("durationMs");
  if (millis == nullptr || !millis->is_number()) return "running";
  return photon::cli::human_duration(millis->to_number<long long>());
}

int cmd_history(const Globals& globals, const std::string& name, const std::string& job_id,
                int limit) {
  check_name(name);
  check_job_id(job_id);
  const boost::json::value data =
      connect(name).request({{"type", "job_history"}, {"jobId", job_id}, {"limit", limit}});
  if (globals.json) {
    print_json(data);
    return kExitOk;
  }
  const boost::json::array& runs = data.at("runs").as_array();
  if (runs.empty()) {
    std::cout << "no runs of " << job_id << " yet\n";
    return kExitOk;
  }
  constexpr std::size_t kErrorWidth = 100;
  photon::cli::Table table(
      {"RUN", "TRIGGER", "SCHEDULED FOR", "STARTED", "DURATION", "STATUS", "ERROR"});
  for (const auto& entry : runs) {
    const boost::json::object& run = entry.as_object();
    table.add_row({boost::json::serialize(run.at("runId")), std::string(text_field(run, "trigger")),
                   local_time(run.at("scheduledFor")), local_time(run.at("startedAt")),
                   run_duration(run), std::string(text_field(run, "status")),
                   one_line(text_field(run, "error"), kErrorWidth)});
  }
  table.print(std::cout);
  return kExitOk;
}

// Waits for run `run_id` of `job_id` to end (its job-completed or job-failed on `client`, which
// subscribed to the jobs channel before starting it) and reports it. Returns the exit status.
int wait_for_run(const Globals& globals, photon::Client& client, const std::string& job_id,
                 std::uint64_t run_id, std::optional<std::chrono::milliseconds> timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  const std::string run_name = "run " + std::to_string(run_id) + " of " + job_id;
  // The run as its end event tells it; replaced below by its record in the history.
  std::optional<boost::json::object> outcome;
  while (!outcome) {
    const auto left =
        deadline == Clock::time_point::max()
            ? std::chrono::milliseconds(std::chrono::hours(24))
            : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      std::cerr << "photonctl: " << run_name << " still running after "
                << photon::cli::human_duration(timeout->count()) << "\n";
      return kExitFailed;
    }
    const auto message = client.next(left);
    if (!message || !message->message.is_object()) continue;
    const boost::json::object& event = message->message.get_object();
    const std::string_view kind = text_field(event, "event");
    const boost::json::value* data = event.if_contains("data");
    if ((kind != "job-completed" && kind != "job-failed") || data == nullptr ||
        !data->is_object()) {
      continue;
    }
    const boost::json::value* id = data->get_object().if_contains("runId");
    if (text_field(data->get_object(), "jobId") != job_id || id == nullptr || !id->is_number() ||
        id->to_number<std::uint64_t>() != run_id) {
      continue;
    }
    outcome = boost::json::object{{"jobId", job_id},
                                  {"runId", run_id},
                                  {"status", kind == "job-completed" ? "ok" : "failed"},
                                  {"error", text_field(data->get_object(), "error")}};
  }
  // The record says how the run ended exactly (timed_out, cancelled) and how long it took. It is
  // among the latest runs (the daemon keeps 100 per job), unless the job was unscheduled meanwhile.
  std::string reason;
  if (const auto history = job_request(
          client, {{"type", "job_history"}, {"jobId", job_id}, {"limit", 100}}, reason)) {
    for (const auto& entry : history->at("runs").as_array()) {
      const boost::json::object& run = entry.as_object();
      if (run.at("runId").to_number<std::uint64_t>() != run_id) continue;
      outcome = boost::json::object{{"jobId", job_id}};
      for (const auto& field : run) (*outcome)[field.key()] = field.value();
      break;
    }
  }
  const std::string status(text_field(*outcome, "status"));
  const boost::json::value* millis = outcome->if_contains("durationMs");
  const std::string took =
      millis != nullptr && millis->is_number()
          ? " in " + photon::cli::human_duration(millis->to_number<long long>())
          : "";
  if (globals.json) print_json(*outcome);
  if (status == "ok") {
    if (!globals.json) std::cout << run_name << ": ok" << took << "\n";
    return kExitOk;
  }
  std::cerr << "photonctl: " << run_name << ": " << status << took;
  if (const auto error = text_field(*outcome, "error"); !error.empty()) std::cerr << ": " << error;
  std::cerr << "\n";
  return kExitFailed;
}

int cmd_run_job(const Globals& globals, const std::string& name, const std::string& job_id,
                bool wait, const std::optional<std::string>& timeout_text) {
  check_name(name);
  check_job_id(job_id);
  std::optional<std::chrono::milliseconds> timeout;
  if (timeout_text) {
    if (!wait) throw UsageError("--timeout needs --wait");
    timeout = duration_flag(*timeout_text, "--timeout");
  }
  photon::Client client = connect(name);
  // Subscribed before the run starts, so its end cannot be missed.
  if (wait) client.subscribe("jobs:" + name);
  std::string reason;
  const auto data = job_request(client, {{"type", "run_job"}, {"jobId", job_id}}, reason);
  if (!data) return job_refused(globals, {{"started", false}, {"jobId", job_id}}, reason);
  const std::uint64_t run_id = data->at("runId").to_number<std::uint64_t>();
  if (!wait) {
    if (globals.json)
      print_json(*data);
    else
      std::cout << "started run " << run_id << " of " << job_id << "\n";
    return kExitOk;
  }
  if (!globals.json) std::cout << "started run " << run_id << " of " << job_id << std::endl;
  return wait_for_run(globals, client, job_id, run_id, timeout);
}

}  // namespace

void add_jobs_command(CommandLine& cli) {
  auto* jobs = cli.add("jobs", "List the cron jobs of photon NAME",
                       [&cli] { return cmd_jobs(cli.globals(), cli.name()); });
  jobs->add_option("name", cli.name(), "Photon name")->required();
  jobs->footer(
      "NEXT RUN is local time with its UTC offset. LAST STATUS is ok, failed, timed_out,\n"
      "cancelled, skipped (the previous run was still running) or missed (the daemon was down),\n"
      "with the error abbreviated. --json prints the daemon's list_jobs data.");
}

void add_schedule_command(CommandLine& cli) {
  auto flags = std::make_shared<ScheduleFlags>();
  auto* schedule =
      cli.add("schedule", "Schedule job JOBID: call METHOD of photon NAME at the times of CRON",
              [&cli, flags] { return cmd_schedule(cli.globals(), cli.name(), *flags); });
  schedule->add_option("name", cli.name(), "Photon name")->required();
  schedule->add_option("job", flags->job_id, "Job id; a job with this id is replaced")->required();
  schedule->add_option("method", flags->method, "Method name")->required();
  schedule
      ->add_option("cron", flags->cron,
                   "Cron expression: 5 fields, or 6 with a leading second field; quote it")
      ->required();
  schedule->add_option("params", flags->pairs, "Arguments as key=value (typed as for call)");
  schedule->add_option("--args", flags->args_json,
                       "Arguments as a JSON object; key=value pairs win over it");
  schedule->add_option("--tz", flags->zone,
                       "IANA time zone of the expression (default: the daemon's local zone)");
  schedule
      ->add_option("--catch-up", flags->catch_up,
                   "A slot missed while the daemon was down: run once for the latest (latest, "
                   "the default) or skip it")
      ->check(CLI::IsMember({"latest", "skip"}));
  schedule
      ->add_option("--overlap", flags->overlap,
                   "A slot due while the previous run still runs: skip it (the default) or "
                   "allow a second run")
      ->check(CLI::IsMember({"skip", "allow"}));
  schedule->footer(
      "Each run calls METHOD in session \"scheduler\"; runs are announced on channel jobs:NAME\n"
      "(job-started, job-completed, job-failed, job-skipped). `photonctl cron EXPR` shows when an\n"
      "expression fires. Jobs persist across daemon restarts.\n"
      "Exit status: 0 scheduled, 1 refused (bad expression, zone or method; a job the photon\n"
      "declares), 2 usage, 3 daemon not running.");
}

void add_unschedule_command(CommandLine& cli) {
  auto job_id = std::make_shared<std::string>();
  auto* unschedule = cli.add("unschedule", "Remove job JOBID of photon NAME", [&cli, job_id] {
    return cmd_unschedule(cli.globals(), cli.name(), *job_id);
  });
  unschedule->add_option("name", cli.name(), "Photon name")->required();
  unschedule->add_option("job", *job_id, "Job id")->required();
  unschedule->footer(
      "Exit status: 0 removed, 1 refused (no such job, or one the photon declares), 2 usage,\n"
      "3 daemon not running. A run in progress finishes.");
}

void add_history_command(CommandLine& cli) {
  struct Options {
    std::string job_id;
    int limit = 20;
  };
  auto options = std::make_shared<Options>();
  auto* history =
      cli.add("history", "Show the latest runs of job JOBID, newest first", [&cli, options] {
        return cmd_history(cli.globals(), cli.name(), options->job_id, options->limit);
      });
  history->add_option("name", cli.name(), "Photon name")->required();
  history->add_option("job", options->job_id, "Job id")->required();
  history->add_option("-n,--limit", options->limit, "How many runs")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  history->footer(
      "TRIGGER is schedule, catch-up (once for a slot missed while the daemon was down) or manual\n"
      "(run-job); times are local time. Exit status: 0 ok, 1 no such job, 2 usage, 3 daemon not\n"
      "running.");
}

void add_run_job_command(CommandLine& cli) {
  struct Options {
    std::string job_id;
    bool wait = false;
    std::optional<std::string> timeout;
  };
  auto options = std::make_shared<Options>();
  auto* run_job = cli.add("run-job", "Run job JOBID of photon NAME now", [&cli, options] {
    return cmd_run_job(cli.globals(), cli.name(), options->job_id, options->wait, options->timeout);
  });
  run_job->add_option("name", cli.name(), "Photon name")->required();
  run_job->add_option("job", options->job_id, "Job id")->required();
  run_job->add_flag("--wait", options->wait, "Wait for the run to end and report how it went");
  run_job->add_option("--timeout", options->timeout,
                      "With --wait: give up after this long (e.g. 5m)");
  run_job->footer(
      "The run is recorded with trigger \"manual\". A job whose overlap is skip is refused while\n"
      "it runs.\n"
      "Exit status: 0 started (with --wait: ended ok), 1 refused, or with --wait failed, timed\n"
      "out or still running at --timeout, 2 usage, 3 daemon not running.");
}

}  // namespace photon::cli
