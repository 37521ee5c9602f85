// Reading a test_clock request (daemon/test_clock.hpp).
#include "daemon/test_clock.hpp"

#include <date/date.h>

#include <charconv>

namespace photon::daemon {

namespace {

// Reads exactly `digits` decimal digits at `at`, advancing it; nothing if they are not there.
std::optional<int> read_digits(std::string_view text, std::size_t& at, std::size_t digits) {
  if (at + digits > text.size()) return std::nullopt;
  int value = 0;
  const char* first = text.data() + at;
  const auto [end, error] = std::from_chars(first, first + digits, value);
  if (error != std::errc() || end != first + digits) return std::nullopt;
  at += digits;
  return value;
}

bool read_char(std::string_view text, std::size_t& at, std::string_view accepted) {
  if (at >= text.size() || accepted.find(text[at]) == std::string_view::npos) return false;
  ++at;
  return true;
}

}  // namespace

// (date::parse would do, but GCC 12 warns inside it at -O2, and warnings are errors here.)
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  using namespace std::chrono;
  std::size_t at = 0;
  const auto year = read_digits(text, at, 4);
  if (!year || !read_char(text, at, "-")) return std::nullopt;
  const auto month = read_digits(text, at, 2);
  if (!month || !read_char(text, at, "-")) return std::nullopt;
  const auto day = read_digits(text, at, 2);
  if (!day || !read_char(text, at, "Tt ")) return std::nullopt;
  const auto hour = read_digits(text, at, 2);
  if (!hour || !read_char(text, at, ":")) return std::nullopt;
  const auto minute = read_digits(text, at, 2);
  if (!minute || !read_char(text, at, ":")) return std::nullopt;
  const auto second = read_digits(text, at, 2);
  if (!second) return std::nullopt;
  const date::year_month_day date{date::year(*year), date::month(static_cast<unsigned>(*month)),
                                  date::day(static_cast<unsigned>(*day))};
  // 60 is a leap second, which the system clock does not count: it reads as the next second.
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  nanoseconds fraction{0};
  if (read_char(text, at, ".")) {
    std::size_t digits = 0;
    long long scale = 100'000'000;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      fraction += nanoseconds((text[at] - '0') * scale);
      scale /= 10;
      ++at;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  minutes offset{0};
  if (!read_char(text, at, "Zz")) {
    if (at >= text.size()) return std::nullopt;
    const int sign = text[at] == '-' ? -1 : 1;
    if (!read_char(text, at, "+-")) return std::nullopt;
    const auto offset_hours = read_digits(text, at, 2);
    if (!offset_hours || !read_char(text, at, ":")) return std::nullopt;
    const auto offset_minutes = read_digits(text, at, 2);
    if (!offset_minutes || *offset_hours > 23 || *offset_minutes > 59) return std::nullopt;
    offset = sign * (hours(*offset_hours) + minutes(*offset_minutes));
  }
  if (at != text.size()) return std::nullopt;
  const auto local = date::sys_days(date) + hours(*hour) + minutes(*minute) + seconds(*second);
  return time_point_cast<system_clock::duration>(local - offset + fraction);
}

std::variant<ClockMove, std::string> parse_clock_move(const protocol::Request& request) {
  ClockMove move;
  const boost::json::value* advance = request.find("advanceMs");
  const boost::json::value* set_wall = request.find("setWall");
  if (advance != nullptr && set_wall != nullptr) {
    return std::string("test_clock takes advanceMs or setWall, not both");
  }
  if (advance != nullptr) {
    const std::optional<std::int64_t> ms = protocol::integer_value(*advance);
    if (!ms || *ms < 0 || *ms > kMaxClockAdvanceMs) {
      return "advanceMs must be an integer from 0 to " + std::to_string(kMaxClockAdvanceMs);
    }
    move.advance = std::chrono::milliseconds(*ms);
  }
  if (set_wall != nullptr) {
    const auto when = set_wall->is_string()
                          ? parse_rfc3339(std::string_view(set_wall->get_string()))
                          : std::nullopt;
    if (!when) {
      return std::string(
          "setWall must be an RFC 3339 date-time string, e.g. \"2026-03-08T01:59:00Z\"");
    }
    move.set_wall = when;
  }
  return move;
}

}  // namespace photon::daemon
