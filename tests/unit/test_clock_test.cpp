// The test_clock request's fields: RFC 3339 times as the wall clock reads them, and the refusals.
#include "daemon/test_clock.hpp"

#include "common/clock.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace photon::daemon {
namespace {

long long millis(std::string_view text) {
  const auto when = parse_rfc3339(text);
  EXPECT_TRUE(when.has_value()) << text;
  return when ? photon::epoch_millis(*when) : 0;
}

TEST(Rfc3339, UtcOffsetsAndFractionsNameTheSameInstant) {
  EXPECT_EQ(millis("2026-03-08T01:59:00Z"), 1772935140000);
  EXPECT_EQ(millis("2026-03-08t01:59:00z"), 1772935140000);
  EXPECT_EQ(millis("2026-03-08T02:59:00+01:00"), 1772935140000);
  EXPECT_EQ(millis("2026-03-07T20:59:00-05:00"), 1772935140000);
  EXPECT_EQ(millis("2026-03-08T01:59:00.25Z"), 1772935140250);
  EXPECT_EQ(millis("2026-03-08T01:59:00.123456789Z"), 1772935140123);
  EXPECT_EQ(millis("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(millis("2028-02-29T00:00:00Z"), 1835395200000);
  // A leap second reads as the second after it (the system clock does not count them).
  EXPECT_EQ(millis("2016-12-31T23:59:60Z"), millis("2017-01-01T00:00:00Z"));
}

TEST(Rfc3339, AnythingElseIsRefused) {
  for (std::string_view bad :
       {"", "2026-03-08", "2026-03-08T01:59:00", "2026-03-08T01:59Z", "2026-3-8T01:59:00Z",
        "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-03-08T24:00:00Z",
        "2026-03-08T01:60:00Z", "2026-03-08T01:59:61Z", "2026-03-08T01:59:00.Z",
        "2026-03-08T01:59:00+0100", "2026-03-08T01:59:00+24:00", "2026-03-08T01:59:00Z ",
        " 2026-03-08T01:59:00Z", "2026-03-08T01:59:00ZZ", "+2026-03-08T01:59:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

std::variant<ClockMove, std::string> move_of(std::string_view json) {
  static boost::json::value parsed;
  parsed = boost::json::parse(json);
  const protocol::Request request{"test_clock", "t", &parsed.as_object()};
  return parse_clock_move(request);
}

TEST(ClockMoveRequest, AdvanceSetWallOrNeither) {
  auto move = move_of(R"({"advanceMs":1500})");
  ASSERT_TRUE(std::holds_alternative<ClockMove>(move));
  EXPECT_EQ(std::get<ClockMove>(move).advance, std::chrono::milliseconds(1500));
  EXPECT_FALSE(std::get<ClockMove>(move).set_wall);

  move = move_of(R"({"setWall":"2026-03-08T01:59:00Z"})");
  ASSERT_TRUE(std::holds_alternative<ClockMove>(move));
  EXPECT_EQ(photon::epoch_millis(*std::get<ClockMove>(move).set_wall), 1772935140000);

  move = move_of(R"({})");
  ASSERT_TRUE(std::holds_alternative<ClockMove>(move));
  EXPECT_EQ(std::get<ClockMove>(move).advance, std::chrono::milliseconds(0));
}

TEST(ClockMoveRequest, BadFieldsAreRefusedWithTheRule) {
  for (std::string_view bad :
       {R"({"advanceMs":-1})", R"({"advanceMs":"5"})", R"({"advanceMs":0.5})",
        R"({"advanceMs":316224000001})", R"({"advanceMs":null})"}) {
    const auto move = move_of(bad);
    ASSERT_TRUE(std::holds_alternative<std::string>(move)) << bad;
    EXPECT_EQ(std::get<std::string>(move), "advanceMs must be an integer from 0 to 316224000000");
  }
  for (std::string_view bad : {R"({"setWall":"soon"})", R"({"setWall":1772935140000})"}) {
    const auto move = move_of(bad);
    ASSERT_TRUE(std::holds_alternative<std::string>(move)) << bad;
    EXPECT_NE(std::get<std::string>(move).find("setWall must be an RFC 3339"), std::string::npos);
  }
  const auto both = move_of(R"({"advanceMs":1,"setWall":"2026-03-08T01:59:00Z"})");
  ASSERT_TRUE(std::holds_alternative<std::string>(both));
  EXPECT_EQ(std::get<std::string>(both), "test_clock takes advanceMs or setWall, not both");
}

}  // namespace
}  // namespace photon::daemon
