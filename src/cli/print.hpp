// What several photonctl commands print the same way: JSON for scripts, and instants relative to
// now for people.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <string>

namespace photon::cli {

// `value` as one line of compact JSON on stdout.
void print_json(const boost::json::value& value);

// "in 12s", "12s ago": a wall-clock instant relative to now.
std::string from_now(std::chrono::system_clock::time_point when);

}  // namespace photon::cli
