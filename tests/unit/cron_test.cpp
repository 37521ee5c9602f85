// Unit tests of the cron engine: every field form, names, macros, seconds, cronie's
// day-of-month/day-of-week rule, leap days and month ends, both DST changes in New York and London,
// exact error messages, bounded evaluation, a year of fire times, and catch-up lookups.
#include "jobs/cron.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace photon::core {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_seconds;
using ::testing::ElementsAre;

const date::time_zone& utc() { return cron_zone("UTC"); }
const date::time_zone& new_york() { return cron_zone("America/New_York"); }
const date::time_zone& london() { return cron_zone("Europe/London"); }

// "2026-03-08 07:00:00" read as UTC.
sys_seconds at_utc(const std::string& text) {
  int year = 0, hour = 0, minute = 0, second = 0;
  unsigned month = 0, day = 0;
  EXPECT_EQ(
      std::sscanf(text.c_str(), "%d-%u-%u %d:%d:%d", &year, &month, &day, &hour, &minute, &second),
      6)
      << text;
  return date::sys_days{date::year{year} / month / day} + hours{hour} + minutes{minute} +
         seconds{second};
}

// "2026-03-08 03:00:00 EDT": how a person reads an instant in `zone`.
std::string shown(sys_seconds t, const date::time_zone& zone) {
  const date::sys_info info = zone.get_info(t);
  return date::format("%F %T ", date::local_seconds{t.time_since_epoch() + info.offset}) +
         info.abbrev;
}

// The first `count` fire times after `after`, as shown().
std::vector<std::string> fires(std::string_view expression, sys_seconds after, int count,
                               const date::time_zone& zone = utc()) {
  const CronExpression cron = CronExpression::parse(expression);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const auto next = cron.next_after(after, zone);
    if (!next) {
      out.push_back("none");
      break;
    }
    EXPECT_GT(*next, after);
    after = *next;
    out.push_back(shown(after, zone));
  }
  return out;
}

// Every fire time in [from, until).
std::vector<sys_seconds> all_fires(std::string_view expression, sys_seconds from, sys_seconds until,
                                   const date::time_zone& zone = utc()) {
  const CronExpression cron = CronExpression::parse(expression);
  std::vector<sys_seconds> out;
  auto next = cron.next_after(from - seconds{1}, zone);
  while (next && *next < until) {
    out.push_back(*next);
    next = cron.next_after(*next, zone);
  }
  return out;
}

// The minutes (or with `seconds_of`, the seconds) of the fire times within one day.
std::set<int> minutes_within_a_day(std::string_view expression) {
  std::set<int> out;
  for (sys_seconds t :
       all_fires(expression, at_utc("2026-06-01 00:00:00"), at_utc("2026-06-02 00:00:00"))) {
    out.insert(static_cast<int>((t.time_since_epoch() / minutes{1}) % 60));
  }
  return out;
}

std::string parse_error(std::string_view expression) {
  try {
    CronExpression::parse(expression);
  } catch (const CronError& error) {
    return error.what();
  }
  return "(parsed)";
}

// --- field forms -------------------------------------------------------------------------------

TEST(CronParse, StarFiresEveryMinuteAtSecondZero) {
  EXPECT_THAT(
      fires("* * * * *", at_utc("2026-06-01 10:00:30"), 3),
      ElementsAre("2026-06-01 10:01:00 UTC", "2026-06-01 10:02:00 UTC", "2026-06-01 10:03:00 UTC"));
  // Strictly after: a fire time is never returned for itself.
  EXPECT_THAT(fires("* * * * *", at_utc("2026-06-01 10:01:00"), 1),
              ElementsAre("2026-06-01 10:02:00 UTC"));
}

TEST(CronParse, ValuesListsRangesAndSteps) {
  EXPECT_EQ(minutes_within_a_day("7 * * * *"), (std::set<int>{7}));
  EXPECT_EQ(minutes_within_a_day("0-5/2,30,45-47 * * * *"),
            (std::set<int>{0, 2, 4, 30, 45, 46, 47}));
  EXPECT_EQ(minutes_within_a_day("*/20 * * * *"), (std::set<int>{0, 20, 40}));
  EXPECT_EQ(minutes_within_a_day("*/25 * * * *"), (std::set<int>{0, 25, 50}));
  EXPECT_EQ(minutes_within_a_day("10/15 * * * *"),
            (std::set<int>{10, 25, 40, 55}));                             // a/n: a through 59
  EXPECT_EQ(minutes_within_a_day("*/100 * * * *"), (std::set<int>{0}));   // a step past the span
  EXPECT_EQ(minutes_within_a_day("05,005 * * * *"), (std::set<int>{5}));  // leading zeros
  EXPECT_EQ(all_fires("0 20/2 * * *", at_utc("2026-06-01 00:00:00"), at_utc("2026-06-02 00:00:00"))
                .size(),
            2u);  // 20, 22
  EXPECT_THAT(fires("0 0 1-10/3 * *", at_utc("2026-06-01 00:00:00"), 4),
              ElementsAre("2026-06-04 00:00:00 UTC", "2026-06-07 00:00:00 UTC",
                          "2026-06-10 00:00:00 UTC", "2026-07-01 00:00:00 UTC"));
  EXPECT_THAT(
      fires("15 6-8 * * *", at_utc("2026-06-01 07:20:00"), 3),
      ElementsAre("2026-06-01 08:15:00 UTC", "2026-06-02 06:15:00 UTC", "2026-06-02 07:15:00 UTC"));
}

TEST(CronParse, MonthNamesInAnyCaseAndInRanges) {
  EXPECT_THAT(
      fires("0 0 1 jan,Jul,DEC *", at_utc("2026-02-01 00:00:00"), 3),
      ElementsAre("2026-07-01 00:00:00 UTC", "2026-12-01 00:00:00 UTC", "2027-01-01 00:00:00 UTC"));
  EXPECT_THAT(fires("0 0 1 MAR-may *", at_utc("2026-01-01 00:00:00"), 4),
              ElementsAre("2026-03-01 00:00:00 UTC", "2026-04-01 00:00:00 UTC",
                          "2026-05-01 00:00:00 UTC", "2027-03-01 00:00:00 UTC"));
  EXPECT_THAT(
      fires("0 0 1 */4 *", at_utc("2026-01-01 00:00:00"), 3),
      ElementsAre("2026-05-01 00:00:00 UTC", "2026-09-01 00:00:00 UTC", "2027-01-01 00:00:00 UTC"));
  EXPECT_THAT(
      fires("0 0 1 FEB/5 *", at_utc("2026-01-01 00:00:00"), 3),  // Feb, Jul, Dec
      ElementsAre("2026-02-01 00:00:00 UTC", "2026-07-01 00:00:00 UTC", "2026-12-01 00:00:00 UTC"));
}

TEST(CronParse, WeekdayNamesAndBothSundays) {
  // 2026-06-01 is a Monday.
  EXPECT_THAT(fires("0 9 * * MON-FRI", at_utc("2026-06-05 10:00:00"), 2),
              ElementsAre("2026-06-08 09:00:00 UTC", "2026-06-09 09:00:00 UTC"));
  for (const char* sunday : {"0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * Sun"}) {
    EXPECT_THAT(fires(sunday, at_utc("2026-06-01 00:00:00"), 2),
                ElementsAre("2026-06-07 00:00:00 UTC", "2026-06-14 00:00:00 UTC"))
        << sunday;
  }
  EXPECT_THAT(fires("0 0 * * 5-7", at_utc("2026-06-01 00:00:00"), 4),  // Fri, Sat, Sun
              ElementsAre("2026-06-05 00:00:00 UTC", "2026-06-06 00:00:00 UTC",
                          "2026-06-07 00:00:00 UTC", "2026-06-12 00:00:00 UTC"));
  EXPECT_THAT(
      fires("0 0 * * tue/3", at_utc("2026-06-01 00:00:00"), 3),  // 2, 5: Tue, Fri
      ElementsAre("2026-06-02 00:00:00 UTC", "2026-06-05 00:00:00 UTC", "2026-06-09 00:00:00 UTC"));
  EXPECT_THAT(
      fires("0 0 * * */3", at_utc("2026-06-01 00:00:00"), 3),  // 0, 3, 6: Sun, Wed, Sat
      ElementsAre("2026-06-03 00:00:00 UTC", "2026-06-06 00:00:00 UTC", "2026-06-07 00:00:00 UTC"));
}

TEST(CronParse, MacrosMatchTheirFieldsInAnyCase) {
  const std::vector<std::pair<const char*, const char*>> macros = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}, {"@Daily", "0 0 * * *"},    {"@HOURLY", "0 * * * *"}};
  for (const auto& [macro, fields] : macros) {
    EXPECT_EQ(fires(macro, at_utc("2026-06-03 10:30:00"), 3),
              fires(fields, at_utc("2026-06-03 10:30:00"), 3))
        << macro;
    EXPECT_FALSE(CronExpression::parse(macro).has_seconds());
  }
  EXPECT_EQ(CronExpression::parse("  @Daily\n").text(), "@Daily");
}

TEST(CronParse, LeadingSecondsField) {
  const auto cron = CronExpression::parse("*/20 * * * * *");
  EXPECT_TRUE(cron.has_seconds());
  EXPECT_THAT(
      fires("*/20 * * * * *", at_utc("2026-06-01 10:00:05"), 3),
      ElementsAre("2026-06-01 10:00:20 UTC", "2026-06-01 10:00:40 UTC", "2026-06-01 10:01:00 UTC"));
  EXPECT_THAT(fires("30 0 9 * * *", at_utc("2026-06-01 09:00:30"), 2),
              ElementsAre("2026-06-02 09:00:30 UTC", "2026-06-03 09:00:30 UTC"));
  EXPECT_THAT(fires("59 59 23 31 12 *", at_utc("2026-06-01 00:00:00"), 1),
              ElementsAre("2026-12-31 23:59:59 UTC"));
  EXPECT_FALSE(CronExpression::parse("0 9 * * *").has_seconds());
  EXPECT_EQ(CronExpression::parse("\t 0 9 * * *  \r\n").text(), "0 9 * * *");
}

// --- the day-of-month / day-of-week rule ------------------------------------------------------

TEST(CronDays, EitherDayFieldFiresWhenBothAreRestricted) {
  // The 13th (a Tuesday in January 2026) or any Friday.
  EXPECT_THAT(
      fires("0 0 13 * FRI", at_utc("2026-01-01 00:00:00"), 5),
      ElementsAre("2026-01-02 00:00:00 UTC", "2026-01-09 00:00:00 UTC", "2026-01-13 00:00:00 UTC",
                  "2026-01-16 00:00:00 UTC", "2026-01-23 00:00:00 UTC"));
  // A list naming every day does not begin with '*', so the OR rule applies: every day fires.
  EXPECT_THAT(fires("0 0 1-31 * MON", at_utc("2026-06-01 00:00:00"), 2),
              ElementsAre("2026-06-02 00:00:00 UTC", "2026-06-03 00:00:00 UTC"));
  // The OR rule fires even when the day of month never occurs in the month.
  EXPECT_THAT(fires("0 0 30 2 MON", at_utc("2026-01-01 00:00:00"), 2),
              ElementsAre("2026-02-02 00:00:00 UTC", "2026-02-09 00:00:00 UTC"));
}

TEST(CronDays, BothDayFieldsMustMatchWhenOneBeginsWithStar) {
  // "*/2" is restricted (odd days) but begins with '*': cronie's DOM_STAR, so AND. Mondays of
  // 2026 on odd days: Jan 5, Jan 19, Feb 9.
  EXPECT_THAT(
      fires("0 0 */2 * MON", at_utc("2026-01-01 00:00:00"), 3),
      ElementsAre("2026-01-05 00:00:00 UTC", "2026-01-19 00:00:00 UTC", "2026-02-09 00:00:00 UTC"));
  // Likewise for the weekday: "*/7" is Sunday only, AND the 1st: February 1, March 1 and
  // November 1, 2026 are Sundays.
  EXPECT_THAT(
      fires("0 0 1 * */7", at_utc("2026-01-01 00:00:00"), 3),
      ElementsAre("2026-02-01 00:00:00 UTC", "2026-03-01 00:00:00 UTC", "2026-11-01 00:00:00 UTC"));
  EXPECT_THAT(fires("0 0 13 * *", at_utc("2026-01-01 00:00:00"), 1),
              ElementsAre("2026-01-13 00:00:00 UTC"));
  EXPECT_THAT(fires("0 0 * * FRI", at_utc("2026-01-01 00:00:00"), 1),
              ElementsAre("2026-01-02 00:00:00 UTC"));
}

// --- leap days and month ends ------------------------------------------------------------------

TEST(CronDays, LeapDays) {
  EXPECT_THAT(
      fires("0 0 29 2 *", at_utc("2026-01-01 00:00:00"), 3),
      ElementsAre("2028-02-29 00:00:00 UTC", "2032-02-29 00:00:00 UTC", "2036-02-29 00:00:00 UTC"));
  // 2100 is not a leap year: eight years pass.
  EXPECT_THAT(fires("0 0 29 2 *", at_utc("2096-03-01 00:00:00"), 1),
              ElementsAre("2104-02-29 00:00:00 UTC"));
  // OR rule: February 29 or any Monday of February (2028-02-29 is a Tuesday).
  EXPECT_THAT(
      fires("0 0 29 2 1", at_utc("2028-02-20 00:00:00"), 3),
      ElementsAre("2028-02-21 00:00:00 UTC", "2028-02-28 00:00:00 UTC", "2028-02-29 00:00:00 UTC"));
  // AND rule: February 29 on a Sunday, 40 years apart around 2100; still found.
  EXPECT_THAT(fires("0 0 29 2 */7", at_utc("2088-03-01 00:00:00"), 1),
              ElementsAre("2128-02-29 00:00:00 UTC"));
}

TEST(CronDays, TheThirtyFirstSkipsShortMonths) {
  EXPECT_THAT(
      fires("0 0 31 * *", at_utc("2026-01-01 00:00:00"), 7),
      ElementsAre("2026-01-31 00:00:00 UTC", "2026-03-31 00:00:00 UTC", "2026-05-31 00:00:00 UTC",
                  "2026-07-31 00:00:00 UTC", "2026-08-31 00:00:00 UTC", "2026-10-31 00:00:00 UTC",
                  "2026-12-31 00:00:00 UTC"));
  EXPECT_THAT(fires("0 0 30 * *", at_utc("2026-01-31 00:00:00"), 2),
              ElementsAre("2026-03-30 00:00:00 UTC", "2026-04-30 00:00:00 UTC"));
  EXPECT_THAT(
      fires("0 0 1,31 * *", at_utc("2026-02-15 00:00:00"), 2),  // croniter skips March 1 here
      ElementsAre("2026-03-01 00:00:00 UTC", "2026-03-31 00:00:00 UTC"));
  EXPECT_THAT(fires("0 0 31 4,6,9,11,12 *", at_utc("2026-01-01 00:00:00"), 1),
              ElementsAre("2026-12-31 00:00:00 UTC"));
}

// --- daylight saving time -----------------------------------------------------------------------
// New York, 2026: 02:00 EST becomes 03:00 EDT on March 8; 02:00 EDT becomes 01:00 EST on
// November 1. London, 2026: 01:00 GMT becomes 02:00 BST on March 29; 02:00 BST becomes 01:00 GMT
// on October 25.

TEST(CronDst, SkippedLocalTimeFiresOnceWhenTheGapEnds) {
  EXPECT_THAT(
      fires("30 2 * * *", at_utc("2026-03-07 12:00:00"), 3, new_york()),
      ElementsAre("2026-03-08 03:00:00 EDT", "2026-03-09 02:30:00 EDT", "2026-03-10 02:30:00 EDT"));
  EXPECT_THAT(fires("*/15 2 * * *", at_utc("2026-03-07 12:00:00"), 2, new_york()),
              ElementsAre("2026-03-08 03:00:00 EDT", "2026-03-09 02:00:00 EDT"));
  EXPECT_THAT(
      fires("*/15 * * * *", at_utc("2026-03-08 06:40:00"), 3, new_york()),
      ElementsAre("2026-03-08 01:45:00 EST", "2026-03-08 03:00:00 EDT", "2026-03-08 03:15:00 EDT"));
  EXPECT_THAT(
      fires("0 * * * *", at_utc("2026-03-08 05:30:00"), 3, new_york()),
      ElementsAre("2026-03-08 01:00:00 EST", "2026-03-08 03:00:00 EDT", "2026-03-08 04:00:00 EDT"));
  EXPECT_THAT(fires("30 1 * * *", at_utc("2026-03-28 12:00:00"), 2, london()),
              ElementsAre("2026-03-29 02:00:00 BST", "2026-03-30 01:30:00 BST"));
  EXPECT_THAT(fires("*/15 1 * * *", at_utc("2026-03-28 12:00:00"), 2, london()),
              ElementsAre("2026-03-29 02:00:00 BST", "2026-03-30 01:00:00 BST"));
  EXPECT_THAT(
      fires("0 * * * *", at_utc("2026-03-29 00:00:00"), 3, london()),
      ElementsAre("2026-03-29 02:00:00 BST", "2026-03-29 03:00:00 BST", "2026-03-29 04:00:00 BST"));
}

TEST(CronDst, RepeatedLocalTimeFiresOnceAtItsFirstOccurrence) {
  EXPECT_THAT(fires("30 1 * * *", at_utc("2026-10-31 12:00:00"), 2, new_york()),
              ElementsAre("2026-11-01 01:30:00 EDT", "2026-11-02 01:30:00 EST"));
  EXPECT_THAT(
      fires("0 * * * *", at_utc("2026-11-01 03:30:00"), 3, new_york()),
      ElementsAre("2026-11-01 00:00:00 EDT", "2026-11-01 01:00:00 EDT", "2026-11-01 02:00:00 EST"));
  EXPECT_THAT(fires("*/15 * * * *", at_utc("2026-11-01 05:40:00"), 2, new_york()),
              ElementsAre("2026-11-01 01:45:00 EDT", "2026-11-01 02:00:00 EST"));
  // Starting inside the second pass: its local times already fired in the first.
  EXPECT_THAT(fires("*/15 * * * *", at_utc("2026-11-01 06:10:00"), 1, new_york()),
              ElementsAre("2026-11-01 02:00:00 EST"));
  EXPECT_THAT(fires("30 1 * * *", at_utc("2026-11-01 06:10:00"), 1, new_york()),
              ElementsAre("2026-11-02 01:30:00 EST"));
  EXPECT_THAT(fires("30 1 * * *", at_utc("2026-10-24 12:00:00"), 2, london()),
              ElementsAre("2026-10-25 01:30:00 BST", "2026-10-26 01:30:00 GMT"));
  EXPECT_THAT(
      fires("0 * * * *", at_utc("2026-10-24 22:30:00"), 3, london()),
      ElementsAre("2026-10-25 00:00:00 BST", "2026-10-25 01:00:00 BST", "2026-10-25 02:00:00 GMT"));
  EXPECT_THAT(fires("*/15 * * * *", at_utc("2026-10-25 00:40:00"), 2, london()),
              ElementsAre("2026-10-25 01:45:00 BST", "2026-10-25 02:00:00 GMT"));
}

TEST(CronDst, SecondsAcrossTheGapAndTheRepetition) {
  EXPECT_THAT(
      fires("*/30 59 1 * * *", at_utc("2026-03-08 06:59:00"), 3, new_york()),
      ElementsAre("2026-03-08 01:59:30 EST", "2026-03-09 01:59:00 EDT", "2026-03-09 01:59:30 EDT"));
  EXPECT_THAT(fires("* * 2 * * *", at_utc("2026-03-08 06:59:59"), 2, new_york()),
              ElementsAre("2026-03-08 03:00:00 EDT", "2026-03-09 02:00:00 EDT"));
  EXPECT_THAT(
      fires("* * * * * *", at_utc("2026-11-01 05:59:58"), 3, new_york()),
      ElementsAre("2026-11-01 01:59:59 EDT", "2026-11-01 02:00:00 EST", "2026-11-01 02:00:01 EST"));
}

// --- errors ------------------------------------------------------------------------------------

TEST(CronErrors, MessagesSayPreciselyWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "cron expression is empty"},
      {" \t\n", "cron expression is empty"},
      {"* * * *", "expected 5 or 6 fields, got 4"},
      {"* * * * * * *", "expected 5 or 6 fields, got 7"},
      {"61 * * * *", "minute 61 is out of range 0-59"},
      {"60 * * * * *", "second 60 is out of range 0-59"},
      {"* 24 * * *", "hour 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month 0 is out of range 1-31"},
      {"* * 32 * *", "day-of-month 32 is out of range 1-31"},
      {"* * * 0 *", "month 0 is out of range 1-12"},
      {"* * * 13 *", "month 13 is out of range 1-12"},
      {"* * * * 8", "day-of-week 8 is out of range 0-7"},
      {"99999999999999999999 * * * *", "minute 99999999999999999999 is out of range 0-59"},
      {"* * * FOO *", "unknown month name \"FOO\""},
      {"* * * January *", "unknown month name \"January\""},
      {"* * * * Monday", "unknown day-of-week name \"Monday\""},
      {"MON * * * *", "minute \"MON\" is not a number"},
      {"* * L * *", "day-of-month \"L\" is not a number"},
      {"* * * 1a *", "month \"1a\" is neither a number nor a name"},
      {"*/0 * * * *", "step 0 in \"*/0\" must be at least 1"},
      {"* 1-5/0 * * *", "step 0 in \"1-5/0\" must be at least 1"},
      {"*/x * * * *", "step \"x\" in \"*/x\" is not a number"},
      {"*/ * * * *", "missing step after \"/\" in minute \"*/\""},
      {"/5 * * * *", "missing value before \"/\" in minute \"/5\""},
      {"30-10 * * * *", "range 30-10 of minute is backwards"},
      {"* * * DEC-JAN *", "range DEC-JAN of month is backwards"},
      {"* * * * FRI-SUN",
       "range FRI-SUN of day-of-week is backwards (Sunday is 0 or 7: write FRI-7)"},
      {"-5 * * * *", "missing start of range in minute \"-5\""},
      {"5- * * * *", "missing end of range in minute \"5-\""},
      {"1-2-3 * * * *", "too many \"-\" in minute \"1-2-3\""},
      {"*-5 * * * *", "\"*\" must stand alone or before a step in minute \"*-5\""},
      {"1,,2 * * * *", "empty list item in minute \"1,,2\""},
      {"1, * * * *", "empty list item in minute \"1,\""},
      {"* * * * 5#3", "unexpected character '#' in day-of-week \"5#3\""},
      {"* * ? * *", "unexpected character '?' in day-of-month \"?\""},
      {"* * * * \xC3\xA9", "unexpected character '\\xC3' in day-of-week \"\\xC3\\xA9\""},
      {"@reboot", "@reboot is not supported: jobs run on a schedule, not when the daemon starts"},
      {"@REBOOT", "@reboot is not supported: jobs run on a schedule, not when the daemon starts"},
      {"@every",
       "unknown macro \"@every\" (expected @yearly, @annually, @monthly, @weekly, @daily, "
       "@midnight or @hourly)"},
      {"@daily 5", "unexpected text after @daily: \"5\""},
      {"0 0 30 2 *", "never fires: February has no day 30"},
      {"0 0 30,31 2 *", "never fires: February has no day 30 or 31"},
      {"0 0 31 4,6,9,11 *", "never fires: April, June, September and November have no day 31"},
      {"0 0 31 2 */7", "never fires: February has no day 31"},
      {"0 0 0 31 2 *", "never fires: February has no day 31"},
  };
  for (const auto& [expression, message] : cases) {
    EXPECT_EQ(parse_error(expression), message) << expression;
  }
}

TEST(CronErrors, LengthLimits) {
  std::string items = "0";
  for (int i = 1; i < 64; ++i) items += "," + std::to_string(i % 60);
  EXPECT_EQ(parse_error(items + " * * * *"), "(parsed)");  // 64 items
  EXPECT_EQ(parse_error(items + ",5 * * * *"), "minute has 65 list items, the limit is 64");

  const std::string longest =
      "0 0 * * *" + std::string(CronExpression::kMaxTextBytes - 12, ' ') + "* *";
  ASSERT_EQ(longest.size(), 256u);
  EXPECT_EQ(parse_error(longest), "expected 5 or 6 fields, got 7");  // 256 bytes are read
  EXPECT_EQ(parse_error(longest + "1"), "cron expression is 257 bytes long, the limit is 256");
  EXPECT_EQ(parse_error(std::string(1000, ' ') + "0 0 * * *" + std::string(1000, ' ')), "(parsed)");
}

TEST(CronErrors, UnknownTimeZone) {
  try {
    cron_zone("Mars/Base");
    FAIL() << "Mars/Base resolved";
  } catch (const CronError& error) {
    EXPECT_STREQ(error.what(), "unknown time zone \"Mars/Base\"");
  }
  EXPECT_THROW(cron_zone("../../etc/passwd"), CronError);
  EXPECT_EQ(cron_zone("Europe/London").name(), "Europe/London");
  EXPECT_NO_THROW(cron_zone(""));  // the local zone, whatever this machine has
}

// --- bounds ------------------------------------------------------------------------------------

TEST(CronBounds, PathologicalSchedulesEvaluateQuickly) {
  // Each evaluation steps by field, so these take microseconds; the deadline only catches a search
  // that went second by second or never ended (generous for a loaded ASan build).
  const auto started = std::chrono::steady_clock::now();
  const std::vector<const char*> expressions = {"0 0 29 2 */7", "59 59 23 31 12 *", "* * * * * *",
                                                "0 0 29 2 1",   "0 0 31 * *",       "*/7 1-3 * * *",
                                                "0 0 1 1 *"};
  for (const char* expression : expressions) {
    const auto cron = CronExpression::parse(expression);
    for (const auto* zone : {&utc(), &new_york(), &london()}) {
      for (sys_seconds after = at_utc("2026-01-01 00:00:00"); after < at_utc("2027-01-01 00:00:00");
           after += hours{24 * 7 + 1}) {
        const auto next = cron.next_after(after, *zone);
        ASSERT_TRUE(next) << expression;
        EXPECT_GT(*next, after) << expression;
        EXPECT_TRUE(cron.latest_at_or_before(*next, after, *zone)) << expression;
      }
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  // Outside the supported years: empty, not a hang or an overflow.
  const auto cron = CronExpression::parse("* * * * *");
  EXPECT_FALSE(cron.next_after(sys_seconds::max(), utc()));
  EXPECT_FALSE(cron.next_after(sys_seconds::min(), utc()));
  EXPECT_FALSE(cron.latest_at_or_before(sys_seconds::max(), sys_seconds::min(), utc()));
  EXPECT_TRUE(cron.latest_at_or_before(at_utc("2026-01-01 00:00:00"), sys_seconds::min(), utc()));
}

// --- a year of fire times ----------------------------------------------------------------------

TEST(CronYear, CountsAndSpotChecks) {
  const sys_seconds from = at_utc("2026-01-01 00:00:00");
  const sys_seconds until = at_utc("2027-01-01 00:00:00");
  // 2026 starts on a Thursday: 52 weeks and one Thursday, so 52 * 5 + 1 weekdays.
  const auto weekdays = all_fires("0 9 * * MON-FRI", from, until);
  ASSERT_EQ(weekdays.size(), 261u);
  EXPECT_EQ(shown(weekdays.front(), utc()), "2026-01-01 09:00:00 UTC");
  EXPECT_EQ(shown(weekdays[1], utc()), "2026-01-02 09:00:00 UTC");
  EXPECT_EQ(shown(weekdays[2], utc()), "2026-01-05 09:00:00 UTC");
  EXPECT_EQ(shown(weekdays.back(), utc()), "2026-12-31 09:00:00 UTC");

  EXPECT_EQ(all_fires("*/15 * * * *", from, until).size(), 365u * 96);
  EXPECT_EQ(all_fires("0 0 1,15 * *", from, until).size(), 24u);
  EXPECT_EQ(all_fires("@weekly", from, until).size(), 52u);  // Sundays: Jan 4 ... Dec 27
  EXPECT_EQ(all_fires("0 0 31 * *", from, until).size(), 7u);
  // The 13ths (12) or the Fridays (52), less the Fridays the 13th (February, March, November).
  EXPECT_EQ(all_fires("0 12 13 * FRI", from, until).size(), 61u);
  EXPECT_EQ(
      all_fires("0 0 29 2 *", at_utc("2000-01-01 00:00:00"), at_utc("2101-01-01 00:00:00")).size(),
      25u);  // 2000 ... 2096; 2100 is not a leap year

  // In New York the weekday runs stay at 09:00 local across both changes.
  const sys_seconds ny_from = new_york().to_sys(date::local_days{date::year{2026} / 1 / 1});
  const sys_seconds ny_until = new_york().to_sys(date::local_days{date::year{2027} / 1 / 1});
  const auto ny_weekdays = all_fires("0 9 * * MON-FRI", ny_from, ny_until, new_york());
  ASSERT_EQ(ny_weekdays.size(), 261u);
  EXPECT_EQ(shown(ny_weekdays[45], new_york()), "2026-03-05 09:00:00 EST");
  EXPECT_EQ(ny_weekdays[45].time_since_epoch() % hours{24}, hours{14});
  EXPECT_EQ(shown(ny_weekdays[47], new_york()), "2026-03-09 09:00:00 EDT");
  EXPECT_EQ(ny_weekdays[47].time_since_epoch() % hours{24}, hours{13});
  // Each local time fires once: the skipped hour's four slots become one at 03:00 EDT.
  EXPECT_EQ(all_fires("*/15 * * * *", ny_from, ny_until, new_york()).size(), 365u * 96 - 4);
  EXPECT_EQ(all_fires("30 2 * * *", ny_from, ny_until, new_york()).size(), 365u);
  EXPECT_EQ(all_fires("30 1 * * *", ny_from, ny_until, new_york()).size(), 365u);
}

// --- catch-up ----------------------------------------------------------------------------------

TEST(CronLatest, LatestSlotWithinTheWindow) {
  const auto cron = CronExpression::parse("0 9 * * *");
  const sys_seconds at = at_utc("2026-05-01 08:00:00");
  EXPECT_EQ(shown(*cron.latest_at_or_before(at, at - hours{24}, utc()), utc()),
            "2026-04-30 09:00:00 UTC");
  // At or before: a slot at `at` itself counts; one at `not_before` does not.
  const sys_seconds nine = at_utc("2026-05-01 09:00:00");
  EXPECT_EQ(cron.latest_at_or_before(nine, nine - seconds{1}, utc()), nine);
  EXPECT_FALSE(cron.latest_at_or_before(nine - seconds{1}, nine - hours{24}, utc()));
  EXPECT_FALSE(cron.latest_at_or_before(nine, nine, utc()));
  EXPECT_FALSE(CronExpression::parse("0 0 1 1 *").latest_at_or_before(at, at - hours{24}, utc()));
  EXPECT_EQ(
      shown(*CronExpression::parse("0 0 1 1 *").latest_at_or_before(at, sys_seconds::min(), utc()),
            utc()),
      "2026-01-01 00:00:00 UTC");
  EXPECT_EQ(
      shown(*CronExpression::parse("0 0 29 2 *").latest_at_or_before(at, sys_seconds::min(), utc()),
            utc()),
      "2024-02-29 00:00:00 UTC");
  EXPECT_EQ(
      shown(
          *CronExpression::parse("*/20 * * * * *").latest_at_or_before(at + seconds{59}, at, utc()),
          utc()),
      "2026-05-01 08:00:40 UTC");
}

TEST(CronLatest, AcrossDst) {
  // The skipped 02:30 fired at 03:00 EDT.
  EXPECT_EQ(shown(*CronExpression::parse("30 2 * * *")
                       .latest_at_or_before(at_utc("2026-03-08 07:30:00"),
                                            at_utc("2026-03-07 07:30:00"), new_york()),
                  new_york()),
            "2026-03-08 03:00:00 EDT");
  // In the second pass of 01:xx, the latest slot is the first pass's 01:45 EDT.
  EXPECT_EQ(shown(*CronExpression::parse("*/15 * * * *")
                       .latest_at_or_before(at_utc("2026-11-01 06:10:00"),
                                            at_utc("2026-10-31 06:10:00"), new_york()),
                  new_york()),
            "2026-11-01 01:45:00 EDT");
  EXPECT_EQ(shown(*CronExpression::parse("30 1 * * *")
                       .latest_at_or_before(at_utc("2026-11-01 06:40:00"),
                                            at_utc("2026-10-31 06:40:00"), new_york()),
                  new_york()),
            "2026-11-01 01:30:00 EDT");
  EXPECT_EQ(shown(*CronExpression::parse("0 * * * *")
                       .latest_at_or_before(at_utc("2026-10-25 01:30:00"),
                                            at_utc("2026-10-24 01:30:00"), london()),
                  london()),
            "2026-10-25 01:00:00 BST");
}

// Start points for the consistency check: a sample of the year, and around each of the zone's
// transitions in 2026 every 7 minutes for three hours either side, plus the seconds next to it.
std::vector<sys_seconds> start_points(const date::time_zone& zone) {
  std::vector<sys_seconds> out;
  const sys_seconds end = at_utc("2027-01-01 00:00:00");
  for (sys_seconds t = at_utc("2026-01-01 00:00:00"); t < end; t += minutes{24 * 60 + 7})
    out.push_back(t);
  for (sys_seconds t = zone.get_info(at_utc("2026-01-01 00:00:00")).end; t < end;
       t = zone.get_info(t).end) {
    for (minutes offset = -hours{3}; offset <= hours{3}; offset += minutes{7})
      out.push_back(t + offset);
    for (int delta = -2; delta <= 2; ++delta) out.push_back(t + seconds{delta});
  }
  return out;
}

// next_after and latest_at_or_before agree: nothing fires strictly between `after` and the next
// fire time, across DST changes in zones with one-hour and half-hour shifts.
TEST(CronLatest, AgreesWithNextAfter) {
  const std::vector<const char*> expressions = {
      "*/15 * * * *", "30 2 * * *",   "0 1,2 * * *",       "*/20 * 1-2 * * *", "* * 2 * * *",
      "0 0 29 2 1",   "45 1 * * SUN", "0 */3 * 3,10,11 *", "30 0 * * *"};
  for (const char* name : {"America/New_York", "Europe/London", "Australia/Lord_Howe"}) {
    const auto& zone = cron_zone(name);
    const std::vector<sys_seconds> starts = start_points(zone);
    for (const char* expression : expressions) {
      const auto cron = CronExpression::parse(expression);
      for (const sys_seconds after : starts) {
        const auto next = cron.next_after(after, zone);
        ASSERT_TRUE(next);
        EXPECT_EQ(cron.latest_at_or_before(*next, after, zone), next)
            << expression << " in " << name;
        EXPECT_FALSE(cron.latest_at_or_before(*next - seconds{1}, after, zone))
            << expression << " in " << name << " after " << shown(after, zone);
      }
    }
  }
}

}  // namespace
}  // namespace photon::core
