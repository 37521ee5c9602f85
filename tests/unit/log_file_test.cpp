// Unit tests of the daemon's log file: appended and rotated through its directory's descriptor,
// never through a symlink.
#include "daemon/log_file.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <fstream>
#include <sstream>

namespace photon::daemon {
namespace {

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/photon-log-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    root_ = dir_template;
    dir_.emplace(PrivateDir::open_owned(root_ / "daemons"));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string content(const std::filesystem::path& file) const {
    std::ifstream input(file);
    std::stringstream text;
    text << input.rdbuf();
    return text.str();
  }
  std::filesystem::path in_dir(const std::string& name) const { return root_ / "daemons" / name; }

  std::filesystem::path root_;
  std::optional<PrivateDir> dir_;
};

TEST_F(LogFileTest, AppendsAndRotatesLikeSpdlog) {
  auto sink = std::make_shared<LogFileSink>(*dir_, "svc.log", 20, 2);
  sink->set_pattern("%v");
  spdlog::logger logger("t", sink);
  for (const char* line : {"one-aaaaaaa", "two-bbbbbbb", "three-ccccc", "four-dddddd"}) {
    logger.info(line);
  }
  // Each line is 12 bytes with its newline, so each file holds one; two rotated files are kept.
  EXPECT_EQ(content(in_dir("svc.log")), "four-dddddd\n");
  EXPECT_EQ(content(in_dir("svc.1.log")), "three-ccccc\n");
  EXPECT_EQ(content(in_dir("svc.2.log")), "two-bbbbbbb\n");
  EXPECT_FALSE(std::filesystem::exists(in_dir("svc.3.log")));
}

TEST_F(LogFileTest, SymlinkAtTheLogIsRefused) {
  std::ofstream(root_ / "victim") << "precious\n";
  std::filesystem::create_symlink(root_ / "victim", in_dir("svc.log"));
  EXPECT_THROW(LogFileSink(*dir_, "svc.log", 1 << 20, 3), UntrustedPathError);
  EXPECT_EQ(content(root_ / "victim"), "precious\n");
}

TEST_F(LogFileTest, RotationReplacesASymlinkAtARotatedName) {
  std::ofstream(root_ / "victim") << "precious\n";
  std::filesystem::create_symlink(root_ / "victim", in_dir("svc.1.log"));
  auto sink = std::make_shared<LogFileSink>(*dir_, "svc.log", 20, 1);
  sink->set_pattern("%v");
  spdlog::logger logger("t", sink);
  logger.info("one-aaaaaaa");
  logger.info("two-bbbbbbb");
  EXPECT_EQ(content(root_ / "victim"), "precious\n");
  EXPECT_FALSE(std::filesystem::is_symlink(in_dir("svc.1.log")));
  EXPECT_EQ(content(in_dir("svc.1.log")), "one-aaaaaaa\n");
  EXPECT_EQ(content(in_dir("svc.log")), "two-bbbbbbb\n");
}

}  // namespace
}  // namespace photon::daemon
