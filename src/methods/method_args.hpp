// The arguments of a call checked against the parameters its method declares: every `command`,
// and every job at `schedule`, go through it, so each client gets the same refusal.
#pragma once

#include "methods/method_host.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>

namespace photon::core {

// Nothing when `args` fit `method`'s declared parameters, else a sentence for the caller that
// names the first problem and lists the parameters, e.g.
//   method "moveTask": unknown parameter "colum"; parameters: taskId (number), column (string)
// A problem is a name not declared, a value of another type than declared ("number", "string",
// "boolean", "object", "array"; "any" takes every value), or a required parameter missing. A null
// value counts as absent. A method that declares no parameters at all is not checked: its
// parameters are undocumented, not none (as in the spec, where they are documentation).
// Pure; any thread.
std::optional<std::string> check_call_args(const MethodInfo& method,
                                           const boost::json::object& args);

}  // namespace photon::core
