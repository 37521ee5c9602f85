// Unit tests of the private directory rules (ssh's, tmux's, gpg-agent's): which owners and modes
// are trusted, what the refusal says, and that files are reached through the directory's
// descriptor without following a symlink. Tests that need another owner run as root only.
#include "common/private_dir.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace photon {
namespace {

constexpr uid_t kOther = 4242;

struct stat with(mode_t type_and_mode, uid_t owner) {
  struct stat info {};
  info.st_mode = type_and_mode;
  info.st_uid = owner;
  return info;
}

TEST(DirectoryDistrust, OwnDirectoryNotWritableByOthersIsTrusted) {
  for (mode_t mode : {0700, 0755, 0750, 0711, 01700}) {
    EXPECT_EQ(directory_distrust("/d", with(S_IFDIR | mode, 1000), 1000, TrustedOwners::kSelf),
              std::nullopt)
        << std::oct << mode;
  }
}

TEST(DirectoryDistrust, WritableByGroupOrOthersIsRefusedWithOwnerAndMode) {
  for (mode_t mode : {0770, 0707, 0777, 01777, 0720}) {
    auto why = directory_distrust("/d", with(S_IFDIR | mode, 1000), 1000, TrustedOwners::kSelf);
    ASSERT_TRUE(why) << std::oct << mode;
    EXPECT_NE(why->find("/d is owned by uid 1000 with mode"), std::string::npos) << *why;
    EXPECT_NE(why->find("must be owned by uid 1000"), std::string::npos) << *why;
    EXPECT_NE(why->find("must not be able to write it"), std::string::npos) << *why;
  }
  auto why = directory_distrust("/d", with(S_IFDIR | 0777, 1000), 1000, TrustedOwners::kSelf);
  EXPECT_NE(why->find("mode 0777"), std::string::npos) << *why;
}

TEST(DirectoryDistrust, AnotherOwnerIsRefusedEvenWhenPrivate) {
  auto why = directory_distrust("/d", with(S_IFDIR | 0700, kOther), 0, TrustedOwners::kSelf);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("owned by uid 4242 with mode 0700"), std::string::npos) << *why;
  EXPECT_NE(why->find("must be owned by uid 0 "), std::string::npos) << *why;
}

TEST(DirectoryDistrust, RootIsTrustedByClientsOnly) {
  EXPECT_EQ(directory_distrust("/d", with(S_IFDIR | 0755, 0), 1000, TrustedOwners::kSelfOrRoot),
            std::nullopt);
  EXPECT_TRUE(directory_distrust("/d", with(S_IFDIR | 0755, 0), 1000, TrustedOwners::kSelf));
  auto why =
      directory_distrust("/d", with(S_IFDIR | 0700, kOther), 1000, TrustedOwners::kSelfOrRoot);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("uid 1000 or root"), std::string::npos) << *why;
  // Root's world-writable directory is no better than anyone's.
  EXPECT_TRUE(directory_distrust("/d", with(S_IFDIR | 01777, 0), 1000, TrustedOwners::kSelfOrRoot));
}

TEST(DirectoryDistrust, NotADirectoryIsRefused) {
  auto why = directory_distrust("/d", with(S_IFREG | 0600, 1000), 1000, TrustedOwners::kSelf);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("/d is not a directory"), std::string::npos) << *why;
}

TEST(SocketDistrust, OwnOrRootSocketIsTrusted) {
  EXPECT_EQ(socket_distrust("/d/s.sock", with(S_IFSOCK | 0600, 1000), 1000), std::nullopt);
  EXPECT_EQ(socket_distrust("/d/s.sock", with(S_IFSOCK | 0600, 0), 1000), std::nullopt);
}

TEST(SocketDistrust, AnotherOwnerOrAnotherTypeIsRefused) {
  auto why = socket_distrust("/d/s.sock", with(S_IFSOCK | 0666, kOther), 0);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("/d/s.sock is owned by uid 4242"), std::string::npos) << *why;
  why = socket_distrust("/d/s.sock", with(S_IFLNK | 0777, 1000), 1000);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("is a symbolic link"), std::string::npos) << *why;
  EXPECT_TRUE(socket_distrust("/d/s.sock", with(S_IFREG | 0600, 1000), 1000));
}

TEST(ListenerDistrust, OnlySelfOrRoot) {
  EXPECT_EQ(listener_distrust("/d/s.sock", 1000, 1000), std::nullopt);
  EXPECT_EQ(listener_distrust("/d/s.sock", 0, 1000), std::nullopt);
  auto why = listener_distrust("/d/s.sock", kOther, 0);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("runs as uid 4242"), std::string::npos) << *why;
}

class PrivateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/photon-private-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    root_ = dir_template;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  static mode_t mode_of(const std::filesystem::path& path) {
    struct stat info {};
    EXPECT_EQ(::lstat(path.c_str(), &info), 0) << path;
    return info.st_mode & 07777;
  }
  static std::string content(const std::filesystem::path& file) {
    std::ifstream input(file);
    std::stringstream text;
    text << input.rdbuf();
    return text.str();
  }

  std::filesystem::path root_;
};

TEST_F(PrivateDirTest, CreatesTheDirectoryAndItsParent0700) {
  const auto path = root_ / "p" / "daemons";
  PrivateDir dir = PrivateDir::open_owned(path);
  EXPECT_EQ(mode_of(root_ / "p"), 0700u);
  EXPECT_EQ(mode_of(path), 0700u);
  EXPECT_EQ(dir.path(), path);
}

TEST_F(PrivateDirTest, TightensOwnReadableDirectory) {
  std::filesystem::create_directory(root_ / "daemons");
  ::chmod((root_ / "daemons").c_str(), 0755);
  PrivateDir::open_owned(root_ / "daemons");
  EXPECT_EQ(mode_of(root_ / "daemons"), 0700u);
}

TEST_F(PrivateDirTest, RefusesOwnGroupWritableDirectoryAndLeavesItAlone) {
  std::filesystem::create_directory(root_ / "daemons");
  ::chmod((root_ / "daemons").c_str(), 0770);
  try {
    PrivateDir::open_owned(root_ / "daemons");
    FAIL() << "a group-writable directory was accepted";
  } catch (const UntrustedPathError& error) {
    EXPECT_NE(std::string(error.what()).find("with mode 0770"), std::string::npos) << error.what();
  }
  EXPECT_EQ(mode_of(root_ / "daemons"), 0770u);
  EXPECT_THROW(PrivateDir::open_trusted(root_ / "daemons"), UntrustedPathError);
}

TEST_F(PrivateDirTest, RefusesASymlinkInPlaceOfTheDirectory) {
  std::filesystem::create_directory(root_ / "real");
  ::chmod((root_ / "real").c_str(), 0700);
  std::filesystem::create_directory_symlink(root_ / "real", root_ / "daemons");
  try {
    PrivateDir::open_owned(root_ / "daemons");
    FAIL() << "a symlink was followed";
  } catch (const UntrustedPathError& error) {
    EXPECT_NE(std::string(error.what()).find("is a symbolic link"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(PrivateDir::open_trusted(root_ / "daemons"), UntrustedPathError);
}

TEST_F(PrivateDirTest, AnotherUsersDirectoryIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another uid";
  const auto path = root_ / "daemons";
  std::filesystem::create_directory(path);
  ASSERT_EQ(::chown(path.c_str(), kOther, kOther), 0);
  ::chmod(path.c_str(), 0700);
  try {
    PrivateDir::open_owned(path);
    FAIL() << "another uid's directory was accepted";
  } catch (const UntrustedPathError& error) {
    EXPECT_NE(std::string(error.what()).find("owned by uid 4242 with mode 0700"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(PrivateDir::open_trusted(path), UntrustedPathError);
  // Nothing was changed in it.
  EXPECT_EQ(mode_of(path), 0700u);
}

TEST_F(PrivateDirTest, OpenTrustedOfAMissingDirectoryIsNothing) {
  EXPECT_FALSE(PrivateDir::open_trusted(root_ / "none" / "daemons").has_value());
  EXPECT_FALSE(PrivateDir::open_trusted(root_ / "daemons").has_value());
}

TEST_F(PrivateDirTest, EntryPathReachesTheDirectoryAfterItWasMoved) {
  PrivateDir dir = PrivateDir::open_owned(root_ / "daemons");
  const std::string through_fd = dir.entry_path("f");
  EXPECT_EQ(through_fd, "/proc/self/fd/" + std::to_string(dir.fd()) + "/f");
  std::filesystem::rename(root_ / "daemons", root_ / "moved");
  std::filesystem::create_directory(root_ / "daemons");  // a stand-in at the old path
  std::ofstream(through_fd) << "x";
  EXPECT_TRUE(std::filesystem::exists(root_ / "moved" / "f"));
  EXPECT_FALSE(std::filesystem::exists(root_ / "daemons" / "f"));
}

TEST_F(PrivateDirTest, OpenFileNeverFollowsASymlink) {
  PrivateDir dir = PrivateDir::open_owned(root_ / "daemons");
  std::ofstream(root_ / "victim") << "precious\n";
  std::filesystem::create_symlink(root_ / "victim", root_ / "daemons" / "svc.log");
  try {
    ::close(dir.open_file("svc.log", O_WRONLY | O_APPEND | O_CREAT));
    FAIL() << "the symlink was followed";
  } catch (const UntrustedPathError& error) {
    EXPECT_NE(std::string(error.what()).find("svc.log is a symbolic link"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(content(root_ / "victim"), "precious\n");
}

TEST_F(PrivateDirTest, OpenFileRefusesAFifoWithoutBlocking) {
  PrivateDir dir = PrivateDir::open_owned(root_ / "daemons");
  ASSERT_EQ(::mkfifo((root_ / "daemons" / "svc.log").c_str(), 0600), 0);
  EXPECT_THROW(::close(dir.open_file("svc.log", O_RDONLY)), UntrustedPathError);
}

TEST_F(PrivateDirTest, ReplaceFileWritesAtomicallyThroughTheDescriptor) {
  PrivateDir dir = PrivateDir::open_owned(root_ / "daemons");
  std::ofstream(root_ / "victim") << "precious\n";
  std::filesystem::create_symlink(root_ / "victim", root_ / "daemons" / "svc.ui.tmp");
  ASSERT_EQ(dir.replace_file("svc.ui", "{}\n", false), std::nullopt);
  EXPECT_EQ(content(root_ / "daemons" / "svc.ui"), "{}\n");
  EXPECT_EQ(mode_of(root_ / "daemons" / "svc.ui"), 0600u);
  EXPECT_EQ(content(root_ / "victim"), "precious\n");
  EXPECT_FALSE(std::filesystem::exists(root_ / "daemons" / "svc.ui.tmp"));
}

TEST_F(PrivateDirTest, StatusAndRemoveDoNotFollowSymlinks) {
  PrivateDir dir = PrivateDir::open_owned(root_ / "daemons");
  std::ofstream(root_ / "victim") << "precious\n";
  std::filesystem::create_symlink(root_ / "victim", root_ / "daemons" / "svc.sock");
  auto found = dir.status("svc.sock");
  ASSERT_TRUE(found);
  EXPECT_TRUE(S_ISLNK(found->st_mode));
  EXPECT_TRUE(dir.remove("svc.sock"));
  EXPECT_FALSE(dir.status("svc.sock"));
  EXPECT_TRUE(dir.remove("svc.sock"));  // already gone is not an error
  EXPECT_EQ(content(root_ / "victim"), "precious\n");
}

}  // namespace
}  // namespace photon
