// Unit tests of the fencing-token mark file: round trip, absence, refusal of a damaged file, and
// that a symlink planted at the file or its temporary is never followed.
#include "store/token_file.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace photon::store {
namespace {

std::string content(const std::filesystem::path& file) {
  std::ifstream input(file);
  std::stringstream text;
  text << input.rdbuf();
  return text.str();
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/photon-tokens-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    root_ = dir_template;
    dir_.emplace(PrivateDir::open_owned(root_ / "daemons"));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_;
  std::optional<PrivateDir> dir_;
};

TEST_F(TokenFileTest, MissingFileMeansNoTokenIssuedYet) {
  EXPECT_EQ(load_token_mark(*dir_, "x.tokens"), 0u);
}

TEST_F(TokenFileTest, SaveThenLoad) {
  ASSERT_EQ(save_token_mark(*dir_, "x.tokens", 18446744073709551000ull), std::nullopt);
  EXPECT_EQ(load_token_mark(*dir_, "x.tokens"), 18446744073709551000ull);
  ASSERT_EQ(save_token_mark(*dir_, "x.tokens", 7), std::nullopt);
  EXPECT_EQ(load_token_mark(*dir_, "x.tokens"), 7u);
  EXPECT_FALSE(std::filesystem::exists(root_ / "daemons" / "x.tokens.tmp"));
}

TEST_F(TokenFileTest, DamagedFileIsRefusedNotReset) {
  std::ofstream(root_ / "daemons" / "x.tokens") << "12abc\n";
  EXPECT_THROW(load_token_mark(*dir_, "x.tokens"), std::runtime_error);
  std::ofstream(root_ / "daemons" / "y.tokens") << "";
  EXPECT_THROW(load_token_mark(*dir_, "y.tokens"), std::runtime_error);
}

TEST_F(TokenFileTest, UnwritableDirectoryIsAnError) {
  std::filesystem::create_directory(root_ / "daemons" / "x.tokens.tmp");  // cannot be replaced
  EXPECT_TRUE(save_token_mark(*dir_, "x.tokens", 5).has_value());
  EXPECT_EQ(load_token_mark(*dir_, "x.tokens"), 0u);
}

// The attack of issue 13: a symlink at the temporary pointed the daemon's write at another file.
TEST_F(TokenFileTest, SymlinkAtTheTemporaryIsReplacedNotFollowed) {
  const auto victim = root_ / "victim";
  std::ofstream(victim) << "precious\n";
  std::filesystem::create_symlink(victim, root_ / "daemons" / "x.tokens.tmp");
  ASSERT_EQ(save_token_mark(*dir_, "x.tokens", 1000), std::nullopt);
  EXPECT_EQ(content(victim), "precious\n");
  EXPECT_EQ(load_token_mark(*dir_, "x.tokens"), 1000u);
  EXPECT_FALSE(std::filesystem::is_symlink(root_ / "daemons" / "x.tokens"));
}

TEST_F(TokenFileTest, SymlinkAtTheMarkIsRefused) {
  const auto elsewhere = root_ / "elsewhere";
  std::ofstream(elsewhere) << "99\n";
  std::filesystem::create_symlink(elsewhere, root_ / "daemons" / "x.tokens");
  EXPECT_THROW(load_token_mark(*dir_, "x.tokens"), std::runtime_error);
}

}  // namespace
}  // namespace photon::store
