// photon::serve: a program linked with libphoton (photon::photon) becomes its photon's daemon.
#include "photon/photon.hpp"

#include "daemon/command_line.hpp"

namespace photon {

int serve(PhotonDefinition definition, int argc, char** argv) {
  return daemon::embedded_main(std::move(definition), argc, argv);
}

}  // namespace photon
