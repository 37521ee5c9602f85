// photonctl status: one daemon's status with what a person asks next (locks, jobs, methods, URLs,
// where the log is), or every daemon under $PHOTON_DIR; a dead daemon's leftovers are named.
#pragma once

#include "cli/command_line.hpp"

namespace photon::cli {

// Adds `status` to `cli` (see CommandLine::add).
void add_status_command(CommandLine& cli);

}  // namespace photon::cli
