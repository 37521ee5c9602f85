// Unit tests of the single-instance lock: one holder, and a refused process always learns the
// holder's pid from the kernel, whatever a dead daemon left in the pid file.
#include "daemon/instance_lock.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace photon::daemon {
namespace {

class InstanceLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/photon-lock-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    root_ = dir_template;
    dir_.emplace(PrivateDir::open_owned(root_ / "daemons"));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string pid_file() const {
    std::ifstream input(root_ / "daemons" / "svc.pid");
    std::stringstream text;
    text << input.rdbuf();
    return text.str();
  }

  std::filesystem::path root_;
  std::optional<PrivateDir> dir_;
};

TEST_F(InstanceLockTest, HolderWritesItsPidAtOnceAndRemovesTheFile) {
  std::ofstream(root_ / "daemons" / "svc.pid") << "4194303\n";  // a dead daemon's, longer
  pid_t holder = -1;
  {
    auto lock = InstanceLock::acquire(*dir_, "svc.pid", holder);
    ASSERT_TRUE(lock);
    EXPECT_EQ(holder, 0);
    EXPECT_EQ(pid_file(), std::to_string(::getpid()) + "\n");
  }
  EXPECT_FALSE(std::filesystem::exists(root_ / "daemons" / "svc.pid"));
}

TEST_F(InstanceLockTest, SecondAcquireInTheSameProcessIsRefusedAndKeepsTheFirst) {
  pid_t holder = -1;
  auto first = InstanceLock::acquire(*dir_, "svc.pid", holder);
  ASSERT_TRUE(first);
  auto second = InstanceLock::acquire(*dir_, "svc.pid", holder);
  EXPECT_FALSE(second);
  EXPECT_EQ(holder, ::getpid());
  EXPECT_EQ(pid_file(), std::to_string(::getpid()) + "\n");
}

// Another process holds the lock and the file names a dead pid (as between a winner's lock and
// its write in the old code): the loser names the holder, not the file's pid.
TEST_F(InstanceLockTest, LoserNamesTheHolderEvenWhenTheFileNamesAnother) {
  int locked[2];
  int release[2];
  ASSERT_EQ(::pipe(locked), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pid_t ignored = 0;
    auto lock = InstanceLock::acquire(*dir_, "svc.pid", ignored);
    if (!lock) ::_exit(1);
    // Overwrite our pid with a stale one, as a pid file left by a dead daemon reads. The
    // descriptor stays open: closing any descriptor of the file would drop this process's lock.
    const int fd = ::open((root_ / "daemons" / "svc.pid").c_str(), O_WRONLY);
    if (fd < 0 || ::pwrite(fd, "4194303\n", 8, 0) != 8 || ::ftruncate(fd, 8) != 0) ::_exit(4);
    char byte = 'x';
    if (::write(locked[1], &byte, 1) != 1) ::_exit(2);
    if (::read(release[0], &byte, 1) != 1) ::_exit(3);
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(locked[0], &byte, 1), 1);
  pid_t holder = 0;
  auto lock = InstanceLock::acquire(*dir_, "svc.pid", holder);
  EXPECT_FALSE(lock);
  EXPECT_EQ(holder, child);
  ASSERT_EQ(::write(release[1], &byte, 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The holder is gone: the lock is free again.
  auto again = InstanceLock::acquire(*dir_, "svc.pid", holder);
  EXPECT_TRUE(again);
  for (int fd : {locked[0], locked[1], release[0], release[1]}) ::close(fd);
}

TEST_F(InstanceLockTest, SymlinkAtThePidFileIsRefused) {
  std::ofstream(root_ / "victim") << "precious\n";
  std::filesystem::create_symlink(root_ / "victim", root_ / "daemons" / "svc.pid");
  pid_t holder = 0;
  EXPECT_THROW(InstanceLock::acquire(*dir_, "svc.pid", holder), UntrustedPathError);
}

}  // namespace
}  // namespace photon::daemon
