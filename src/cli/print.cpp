// JSON lines and relative times, shared by photonctl's commands.
#include "cli/print.hpp"

#include "cli/table.hpp"

#include <boost/json/serialize.hpp>

#include <iostream>

namespace photon::cli {

void print_json(const boost::json::value& value) {
  std::cout << boost::json::serialize(value) << '\n';
}

std::string from_now(std::chrono::system_clock::time_point when) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(when - std::chrono::system_clock::now())
          .count();
  return millis >= 0 ? "in " + human_duration(millis) : human_duration(-millis) + " ago";
}

}  // namespace photon::cli
