// Unit tests of the fencing-token mark file: round trip, absence, and refusal of a damaged file.
#include "store/token_file.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace photon::store {
namespace {

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/photon-tokens-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(TokenFileTest, MissingFileMeansNoTokenIssuedYet) {
  EXPECT_EQ(load_token_mark(dir_ / "x.tokens"), 0u);
}

TEST_F(TokenFileTest, SaveThenLoad) {
  ASSERT_EQ(save_token_mark(dir_ / "x.tokens", 18446744073709551000ull), std::nullopt);
  EXPECT_EQ(load_token_mark(dir_ / "x.tokens"), 18446744073709551000ull);
  ASSERT_EQ(save_token_mark(dir_ / "x.tokens", 7), std::nullopt);
  EXPECT_EQ(load_token_mark(dir_ / "x.tokens"), 7u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.tokens.tmp"));
}

TEST_F(TokenFileTest, DamagedFileIsRefusedNotReset) {
  std::ofstream(dir_ / "x.tokens") << "12abc\n";
  EXPECT_THROW(load_token_mark(dir_ / "x.tokens"), std::runtime_error);
  std::ofstream(dir_ / "y.tokens") << "";
  EXPECT_THROW(load_token_mark(dir_ / "y.tokens"), std::runtime_error);
}

TEST_F(TokenFileTest, UnwritableDirectoryIsAnError) {
  EXPECT_TRUE(save_token_mark(dir_ / "missing" / "x.tokens", 5).has_value());
}

}  // namespace
}  // namespace photon::store
