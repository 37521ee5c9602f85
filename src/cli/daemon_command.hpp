// photonctl start, stop, restart, ping and logs: a photon's daemon as a process (started detached,
// stopped by request, its log read from its file).
#pragma once

#include "cli/command_line.hpp"

#include <string>

namespace photon::cli {

// Each adds its subcommand to `cli` (see CommandLine::add); main calls them in --help's order.
void add_start_command(CommandLine& cli);
void add_stop_command(CommandLine& cli);
void add_ping_command(CommandLine& cli);
void add_logs_command(CommandLine& cli);
void add_restart_command(CommandLine& cli);

// photond lives beside photonctl in a build or install tree; otherwise it is looked up on PATH.
std::string photond_program();

}  // namespace photon::cli
