// photonctl jobs, schedule, unschedule, history and run-job: a photon's cron jobs (the scheduler's
// requests), with times shown as local time and the UTC offset, whatever the job's own zone.
#pragma once

#include "cli/command_line.hpp"

namespace photon::cli {

// Each adds its subcommand to `cli` (see CommandLine::add).
void add_jobs_command(CommandLine& cli);
void add_schedule_command(CommandLine& cli);
void add_unschedule_command(CommandLine& cli);
void add_history_command(CommandLine& cli);
void add_run_job_command(CommandLine& cli);

}  // namespace photon::cli
