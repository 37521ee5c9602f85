// Unit tests of flag value parsing (durations and byte sizes).
#include "common/units.hpp"

#include <gtest/gtest.h>

namespace photon {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, UnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("30"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("30s"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("10m"), milliseconds(600'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("2D"), milliseconds(172'800'000));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
}

TEST(ParseDuration, RejectsGarbageNegativeAndOverflow) {
  for (auto text : {"", "s", "-1s", "10x", "1.5s", "99999999999999999999d", "9999999999999999d"}) {
    EXPECT_FALSE(parse_duration(text)) << text;
  }
}

TEST(ParseBytes, SuffixesArePowersOf1024) {
  EXPECT_EQ(parse_bytes("1048576"), 1048576u);
  EXPECT_EQ(parse_bytes("64k"), 65536u);
  EXPECT_EQ(parse_bytes("8m"), 8u << 20);
  EXPECT_EQ(parse_bytes("32MiB"), 32u << 20);
  EXPECT_EQ(parse_bytes("1g"), 1u << 30);
  EXPECT_FALSE(parse_bytes("1t"));
  EXPECT_FALSE(parse_bytes("x"));
  EXPECT_FALSE(parse_bytes("99999999999999999999"));
}

// The flags' --help shows the defaults of common/defaults.hpp in these words; each reads back as
// the same value.
TEST(Units, FormattedDefaultsReadBack) {
  EXPECT_EQ(format_bytes(1u << 20), "1m");
  EXPECT_EQ(format_bytes(32u << 20), "32m");
  EXPECT_EQ(format_bytes(64 * 1024), "64k");
  EXPECT_EQ(format_bytes(1000), "1000");
  EXPECT_EQ(format_duration(std::chrono::minutes(5)), "5m");
  EXPECT_EQ(format_duration(std::chrono::seconds(60)), "1m");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(std::chrono::hours(48)), "2d");
  for (std::size_t bytes : {std::size_t{1}, std::size_t{1000}, std::size_t{3} << 30}) {
    EXPECT_EQ(parse_bytes(format_bytes(bytes)), bytes);
  }
  for (auto ms : {milliseconds(1), milliseconds(60'000), milliseconds(90'000)}) {
    EXPECT_EQ(parse_duration(format_duration(ms)), ms);
  }
}

}  // namespace
}  // namespace photon
