// The name check and connect every daemon command starts with.
#include "cli/connect.hpp"

#include "cli/command_line.hpp"
#include "common/paths.hpp"

#include <utility>

namespace photon::cli {

void check_name(const std::string& name) {
  if (auto error = photon_name_error(name)) throw UsageError(*error);
}

Client connect(const std::string& name, ClientOptions options) {
  check_name(name);
  return Client::connect(name, std::move(options));
}

}  // namespace photon::cli
