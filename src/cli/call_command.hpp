// photonctl call and methods: calling a photon's methods (arguments from key=value pairs, prompts
// answered from flags or the terminal, progress on stderr) and listing them.
#pragma once

#include "cli/command_line.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace photon::cli {

// Each adds its subcommand to `cli` (see CommandLine::add).
void add_call_command(CommandLine& cli);
void add_methods_command(CommandLine& cli);

// The `args` of a call: --args (`args_json`, a JSON object), then each key=value pair over it, a
// value that is valid JSON as JSON, else as a string. Throws UsageError for anything else.
boost::json::object call_args(const std::vector<std::string>& pairs,
                              const std::optional<std::string>& args_json);

}  // namespace photon::cli
