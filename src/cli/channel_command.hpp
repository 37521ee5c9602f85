// photonctl pub and sub: publishing on a photon's channels (one message, or a stream of lines from
// stdin) and printing what arrives on them.
#pragma once

#include "cli/command_line.hpp"

namespace photon::cli {

// Each adds its subcommand to `cli` (see CommandLine::add).
void add_pub_command(CommandLine& cli);
void add_sub_command(CommandLine& cli);

}  // namespace photon::cli
