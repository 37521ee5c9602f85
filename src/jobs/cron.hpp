// The cron expression engine: crontab(5) schedules with cronie's semantics (plus an optional
// leading seconds field), evaluated in an IANA time zone. Pure: time is passed in, nothing is read
// but the tz database. See docs/scheduler.md for the syntax and the DST rules.
#pragma once

#include <date/tz.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace photon::core {

// A schedule or a time zone name that cannot be used; what() says precisely why, in words meant for
// the person who wrote it (e.g. `minute 61 is out of range 0-59`).
class CronError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A time zone that exists (or may) but cannot be loaded now, e.g. while the process has no file
// descriptor left. Unlike its base, it is no verdict on the name: the same call may succeed later.
class ZoneUnavailable : public CronError {
 public:
  using CronError::CronError;
};

// A parsed schedule: the set of local times (second, minute, hour, day, month) at which it fires.
//
// Invariants: every field's set is non-empty and the schedule fires on at least one calendar day
// (parse refuses the rest). Evaluation maps each matching local time to one instant: a local time
// skipped by a DST change fires at the first instant after the gap, a repeated one at its first
// occurrence; several local times mapping to one instant fire once.
//
// Bounds: parse is linear in the text (at most kMaxTextBytes). An evaluation steps through months,
// days and times by field, never second by second, and gives up after kSearchYears; since the
// Gregorian calendar repeats every 400 years, a parsed expression always finds its next fire time
// within that horizon.
//
// Thread rule: immutable once parsed; any thread may evaluate a shared one.
class CronExpression {
 public:
  static constexpr std::size_t kMaxTextBytes = 256;
  static constexpr std::size_t kMaxListItems = 64;
  static constexpr int kSearchYears = 401;

  // Parses `text`: 5 fields (minute hour day-of-month month day-of-week), 6 fields (a leading
  // second field first), or one macro (@yearly @annually @monthly @weekly @daily @midnight
  // @hourly). Leading and trailing whitespace is ignored. Throws CronError with the precise
  // problem, also when the schedule can never fire (`0 0 30 2 *`).
  static CronExpression parse(std::string_view text);

  // The first fire time strictly after `after`, evaluated in `zone`. Empty only outside the
  // supported years 1..8999 (`after` or the fire time), or when nothing fires within kSearchYears
  // (which a parsed expression cannot do).
  std::optional<std::chrono::sys_seconds> next_after(std::chrono::sys_seconds after,
                                                     const date::time_zone& zone) const;

  // The last fire time at or before `at` and strictly after `not_before` (catch-up of a missed
  // run: "the latest slot missed within the last 24 h"); empty when there is none, or when `at`
  // is outside years 1..8999.
  std::optional<std::chrono::sys_seconds> latest_at_or_before(std::chrono::sys_seconds at,
                                                              std::chrono::sys_seconds not_before,
                                                              const date::time_zone& zone) const;

  // True for the 6-field form (a leading second field); otherwise fires at second 0.
  bool has_seconds() const { return has_seconds_; }

  // The expression as given, without leading and trailing whitespace.
  const std::string& text() const { return text_; }

 private:
  CronExpression() = default;

  std::uint32_t days_in(int year, unsigned month) const;
  std::optional<std::chrono::seconds> next_time_of_day(int hour, int minute, int second) const;
  std::optional<std::chrono::seconds> prev_time_of_day(int hour, int minute, int second) const;
  std::optional<date::local_seconds> next_local(date::local_seconds from, int last_year) const;
  std::optional<date::local_seconds> prev_local(date::local_seconds from, int first_year) const;

  std::string text_;
  std::uint64_t seconds_ = 0;   // bit s for second s
  std::uint64_t minutes_ = 0;   // bit m for minute m
  std::uint32_t hours_ = 0;     // bit h for hour h
  std::uint32_t days_ = 0;      // bit d for day of month d (1..31)
  std::uint32_t months_ = 0;    // bit m for month m (1..12)
  std::uint32_t weekdays_ = 0;  // bit w for weekday w (0 = Sunday; 7 folded into 0)
  // cronie's rule: when neither day field begins with '*', a day matching either one fires;
  // otherwise a day must match both.
  bool day_or_ = false;
  bool has_seconds_ = false;
  // For each weekday of a month's 1st (0 = Sunday): the days 1..31 whose weekday is in weekdays_.
  std::array<std::uint32_t, 7> weekday_days_{};
};

// The zone named `name` (IANA, e.g. "Europe/London"), or the local zone when `name` is empty: $TZ
// when it names an IANA zone (a leading ':' allowed), else /etc/localtime, else UTC; its rules
// loaded, so evaluating it reads no file. Throws CronError(`unknown time zone "X"`) for a name the
// tz database does not have, and ZoneUnavailable when the zone's file cannot be read now (no
// descriptor left: a later call tries again, nothing is remembered). The database and the zone
// files are opened with the descriptor reserve released (common/descriptor_reserve.hpp), because
// the date library lists the database once and keeps that listing, however incomplete. The zone
// lives as long as the process. Any thread.
const date::time_zone& cron_zone(std::string_view name);

}  // namespace photon::core
