// Unit tests of photon name validation and the $PHOTON_DIR layout.
#include "common/paths.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace photon {
namespace {

TEST(PhotonName, AcceptsTheDocumentedAlphabet) {
  for (auto name : {"kanban", "a", "K-1.b_c", "0abc"}) {
    EXPECT_FALSE(photon_name_error(name)) << name;
  }
  EXPECT_FALSE(photon_name_error(std::string(64, 'x')));
}

TEST(PhotonName, RefusesAnythingThatCouldEscapeTheDirectory) {
  for (auto name : {"", "..", ".hidden", "-flag", "a/b", "a b", "ä", "a\n", "_x"}) {
    EXPECT_TRUE(photon_name_error(name)) << name;
  }
  EXPECT_TRUE(photon_name_error(std::string(65, 'x')));
}

TEST(PhotonPaths, LiveUnderPhotonDirDaemons) {
  ::setenv("PHOTON_DIR", "/tmp/some-dir", 1);
  PhotonPaths paths = photon_paths("kanban");
  EXPECT_EQ(paths.socket, "/tmp/some-dir/daemons/kanban.sock");
  EXPECT_EQ(paths.pid_file, "/tmp/some-dir/daemons/kanban.pid");
  EXPECT_EQ(paths.log_file, "/tmp/some-dir/daemons/kanban.log");
  ::unsetenv("PHOTON_DIR");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(photon_dir(), "/home/u/.photon");
}

}  // namespace
}  // namespace photon
