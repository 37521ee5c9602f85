// How photonctl's commands reach a photon's daemon: the name checked first (a usage error), then
// a client connected to its socket.
#pragma once

#include "photon/client.hpp"

#include <string>

namespace photon::cli {

// Throws UsageError when `name` is not a valid photon name.
void check_name(const std::string& name);

// A client of photon `name`'s daemon with `options` (the defaults unless given). Throws UsageError
// for a bad name, photon::ClientError when the daemon cannot be reached.
Client connect(const std::string& name, ClientOptions options = {});

}  // namespace photon::cli
