// photonctl: the command-line client. Start, stop and inspect daemons; publish and subscribe; run
// a command under a lock; call the photon's methods and schedule them as cron jobs. Each family of
// commands lives in its own src/cli/*_command.cpp; this file lists them in --help's order. Exit
// codes: cli/exit_codes.hpp.
#include "cli/call_command.hpp"
#include "cli/channel_command.hpp"
#include "cli/command_line.hpp"
#include "cli/cron_command.hpp"
#include "cli/daemon_command.hpp"
#include "cli/jobs_command.hpp"
#include "cli/lock_command.hpp"
#include "cli/service_command.hpp"
#include "cli/status_command.hpp"
#include "cli/ui_command.hpp"
#include "cli/webhook_command.hpp"

#include <string>

namespace {

constexpr const char* kTopLevelFooter =
    "Environment:\n"
    "  PHOTON_DIR         where daemons keep their files (default ~/.photon): daemons/NAME.sock,\n"
    "                     .pid, .log, .db\n"
    "  PHOTON_SESSION_ID  the session call and unlock act as (call's default: the daemon's\n"
    "                     shared \"default\" session)\n"
    "Exit status: 0 ok, 1 refused or failed, 2 usage, 3 daemon not running; lock: its command's\n"
    "status, or 75 when the lock is held by another.\n"
    "Run 'photonctl COMMAND --help' for a command's flags. Documentation: README.md and docs/\n"
    "(protocol.md, methods.md, locks.md, scheduler.md, operations.md...) in the source tree.";

}  // namespace

int main(int argc, char** argv) {
  using namespace photon::cli;
  CommandLine cli("photonctl: control photon daemons, use their channels, call their methods",
                  std::string("photonctl ") + PHOTON_VERSION, kTopLevelFooter);
  add_start_command(cli);
  add_stop_command(cli);
  add_status_command(cli);
  add_ping_command(cli);
  add_pub_command(cli);
  add_sub_command(cli);
  add_lock_command(cli);
  add_locks_command(cli);
  add_unlock_command(cli);
  add_call_command(cli);
  add_logs_command(cli);
  add_restart_command(cli);
  add_methods_command(cli);
  add_jobs_command(cli);
  add_schedule_command(cli);
  add_unschedule_command(cli);
  add_history_command(cli);
  add_run_job_command(cli);

  // The commands that register themselves on the app.
  CronCommand cron(cli.app());
  WebhookCommands webhooks(cli.app());
  UiCommand ui(cli.app());
  ServiceCommand service(cli.app());
  const Globals& globals = cli.globals();
  cli.add_runner([&] { return static_cast<bool>(service); },
                 [&] { return service.run(globals.json, photond_program()); });
  cli.add_runner([&] { return static_cast<bool>(cron); }, [&] { return cron.run(globals.json); });
  cli.add_runner([&] { return static_cast<bool>(webhooks); },
                 [&] { return webhooks.run(globals.json); });
  cli.add_runner([&] { return static_cast<bool>(ui); }, [&] { return ui.run(globals.json); });

  return cli.run(argc, argv);
}
