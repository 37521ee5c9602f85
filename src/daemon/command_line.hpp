// The daemon's command line, shared by photond and by programs embedding a C++ photon.
#pragma once

#include "photon/photon.hpp"

namespace photon::daemon {

// photond: `photond serve NAME [--manifest FILE] [flags]`. Returns the exit code.
int photond_main(int argc, char** argv);

// A program embedding `definition`: `PROGRAM [NAME] [flags]`, NAME defaulting to the photon's.
int embedded_main(PhotonDefinition definition, int argc, char** argv);

}  // namespace photon::daemon
