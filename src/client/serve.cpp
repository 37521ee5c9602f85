// photon::serve: a program that links libphoton becomes the daemon of its C++ photon.
#include "photon/photon.hpp"

#include "daemon/command_line.hpp"

namespace photon {

int serve(PhotonDefinition definition, int argc, char** argv) {
  return daemon::embedded_main(std::move(definition), argc, argv);
}

}  // namespace photon
