// photonctl lock, locks and unlock: running a command under a photon's lock (as flock(1) does for
// a file), listing the locks held, and releasing one a session left behind.
#pragma once

#include "cli/command_line.hpp"

namespace photon::cli {

// Each adds its subcommand to `cli` (see CommandLine::add).
void add_lock_command(CommandLine& cli);
void add_locks_command(CommandLine& cli);
void add_unlock_command(CommandLine& cli);

}  // namespace photon::cli
