// Parsing and evaluation of cron expressions; the rules are in docs/scheduler.md.
#include "jobs/cron.hpp"

#include "common/descriptor_reserve.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace photon::core {
namespace {

using std::chrono::seconds;
using std::chrono::sys_seconds;

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 12> kMonthFullNames = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};

struct Field {
  std::string_view name;
  int min;
  int max;
  const std::string_view* names;  // names[i] means min + i; nullptr: numbers only
  std::size_t name_count;
  std::string_view names_label;  // "month name", "day-of-week name"
};

constexpr Field kSecond{"second", 0, 59, nullptr, 0, {}};
constexpr Field kMinute{"minute", 0, 59, nullptr, 0, {}};
constexpr Field kHour{"hour", 0, 23, nullptr, 0, {}};
constexpr Field kDayOfMonth{"day-of-month", 1, 31, nullptr, 0, {}};
constexpr Field kMonth{"month", 1, 12, kMonthNames.data(), kMonthNames.size(), "month name"};
constexpr Field kDayOfWeek{"day-of-week",     0, 7, kDayNames.data(), kDayNames.size(),
                           "day-of-week name"};

// Instants the evaluation accepts and returns: the civil arithmetic below stays exact, and a
// 401-year search from the last one still fits date::year.
constexpr sys_seconds kEarliest{date::sys_days{date::year{1} / 1 / 1}};
constexpr sys_seconds kLatest{date::sys_days{date::year{9000} / 1 / 1}};

bool in_range(sys_seconds t) { return t >= kEarliest && t < kLatest; }

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// `text` in double quotes, with quotes, backslashes, control and non-ASCII bytes escaped, so a
// message stays one printable line whatever the input was; long text is cut.
std::string quoted(std::string_view text, std::size_t limit = 80) {
  constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == limit) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

// A character for a message: 'x', or \xNN for one that does not print.
std::string shown(char c) {
  const std::string inner = quoted(std::string_view(&c, 1));
  return "'" + inner.substr(1, inner.size() - 2) + "'";
}

[[noreturn]] void fail(const std::string& message) { throw CronError(message); }

// Decimal digits as a number; anything above 10^6 reads as 10^6 (out of every range, and a step
// that large selects only the first value, like any step beyond the field's span).
int number(std::string_view digits) {
  int value = 0;
  for (char c : digits) {
    value = std::min(value * 10 + (c - '0'), 1'000'000);
  }
  return value;
}

bool all_of(std::string_view text, bool (*predicate)(char)) {
  return !text.empty() && std::all_of(text.begin(), text.end(), predicate);
}

// One end of a range, or a single value: a number or (month, day-of-week) a name.
int value_of(std::string_view token, const Field& field, std::string_view item) {
  if (token.find('*') != std::string_view::npos) {
    fail("\"*\" must stand alone or before a step in " + std::string(field.name) + " " +
         quoted(item));
  }
  if (all_of(token, is_digit)) {
    const int value = number(token);
    if (value < field.min || value > field.max) {
      fail(std::string(field.name) + " " + std::string(token) + " is out of range " +
           std::to_string(field.min) + "-" + std::to_string(field.max));
    }
    return value;
  }
  if (all_of(token, is_alpha) && field.names != nullptr) {
    if (token.size() == 3) {
      for (std::size_t i = 0; i < field.name_count; ++i) {
        const std::string_view name = field.names[i];
        if (upper(token[0]) == name[0] && upper(token[1]) == name[1] &&
            upper(token[2]) == name[2]) {
          return field.min + static_cast<int>(i);
        }
      }
    }
    fail("unknown " + std::string(field.names_label) + " " + quoted(token));
  }
  if (field.names != nullptr) {
    fail(std::string(field.name) + " " + quoted(token) + " is neither a number nor a name");
  }
  fail(std::string(field.name) + " " + quoted(token) + " is not a number");
}

// Sets the bits of one list item: *, */n, a, a-b, a-b/n or a/n.
void parse_item(std::string_view item, const Field& field, std::uint64_t& bits) {
  std::string_view range = item;
  int step = 1;
  bool stepped = false;
  if (const auto slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    const std::string_view step_text = item.substr(slash + 1);
    if (range.empty()) {
      fail("missing value before \"/\" in " + std::string(field.name) + " " + quoted(item));
    }
    if (step_text.empty()) {
      fail("missing step after \"/\" in " + std::string(field.name) + " " + quoted(item));
    }
    if (!all_of(step_text, is_digit)) {
      fail("step " + quoted(step_text) + " in " + quoted(item) + " is not a number");
    }
    step = number(step_text);
    if (step == 0) fail("step 0 in " + quoted(item) + " must be at least 1");
    stepped = true;
  }
  int low;
  int high;
  if (range == "*") {
    low = field.min;
    high = field.max;
  } else if (const auto dash = range.find('-'); dash != std::string_view::npos) {
    const std::string_view first = range.substr(0, dash);
    const std::string_view last = range.substr(dash + 1);
    if (first.empty()) {
      fail("missing start of range in " + std::string(field.name) + " " + quoted(item));
    }
    if (last.empty()) {
      fail("missing end of range in " + std::string(field.name) + " " + quoted(item));
    }
    if (last.find('-') != std::string_view::npos) {
      fail("too many \"-\" in " + std::string(field.name) + " " + quoted(item));
    }
    low = value_of(first, field, item);
    high = value_of(last, field, item);
    if (low > high) {
      std::string message =
          "range " + std::string(range) + " of " + std::string(field.name) + " is backwards";
      if (&field == &kDayOfWeek && high == 0) {
        message += " (Sunday is 0 or 7: write " + std::string(first) + "-7)";
      }
      fail(message);
    }
  } else {
    low = value_of(range, field, item);
    high = stepped ? field.max : low;  // a/n: a through the field's last value
  }
  for (int value = low; value <= high; value += step) bits |= std::uint64_t{1} << value;
}

// The bits of a whole field: a comma-separated list of items.
std::uint64_t parse_field(std::string_view text, const Field& field) {
  for (char c : text) {
    if (!is_digit(c) && !is_alpha(c) && c != '*' && c != ',' && c != '-' && c != '/') {
      fail("unexpected character " + shown(c) + " in " + std::string(field.name) + " " +
           quoted(text));
    }
  }
  const auto items = static_cast<std::size_t>(std::count(text.begin(), text.end(), ',')) + 1;
  if (items > CronExpression::kMaxListItems) {
    fail(std::string(field.name) + " has " + std::to_string(items) + " list items, the limit is " +
         std::to_string(CronExpression::kMaxListItems));
  }
  std::uint64_t bits = 0;
  std::string_view rest = text;
  for (;;) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    if (item.empty()) fail("empty list item in " + std::string(field.name) + " " + quoted(text));
    parse_item(item, field, bits);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return bits;
}

std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

struct Macro {
  std::string_view name;
  std::string_view fields;
};

constexpr std::array<Macro, 7> kMacros = {{{"@yearly", "0 0 1 1 *"},
                                           {"@annually", "0 0 1 1 *"},
                                           {"@monthly", "0 0 1 * *"},
                                           {"@weekly", "0 0 * * 0"},
                                           {"@daily", "0 0 * * *"},
                                           {"@midnight", "0 0 * * *"},
                                           {"@hourly", "0 * * * *"}}};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return upper(x) == upper(y); });
}

// The five fields a macro stands for.
std::string_view expand_macro(std::string_view text) {
  const auto end = std::find_if(text.begin(), text.end(), is_space);
  const std::string_view name = text.substr(0, static_cast<std::size_t>(end - text.begin()));
  if (equals_ignoring_case(name, "@reboot")) {
    fail("@reboot is not supported: jobs run on a schedule, not when the daemon starts");
  }
  const auto macro = std::find_if(kMacros.begin(), kMacros.end(), [&](const Macro& m) {
    return equals_ignoring_case(name, m.name);
  });
  if (macro == kMacros.end()) {
    fail("unknown macro " + quoted(name) +
         " (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)");
  }
  if (name.size() != text.size()) {
    fail("unexpected text after " + std::string(name) + ": " +
         quoted(trim(text.substr(name.size()))));
  }
  return macro->fields;
}

int next_bit(std::uint64_t bits, int from) {
  if (from < 0) from = 0;
  if (from >= 64) return -1;
  const std::uint64_t left = bits & (~std::uint64_t{0} << from);
  return left == 0 ? -1 : std::countr_zero(left);
}

int prev_bit(std::uint64_t bits, int from) {
  if (from < 0) return -1;
  const std::uint64_t left = from >= 63 ? bits : bits & ((std::uint64_t{2} << from) - 1);
  return left == 0 ? -1 : 63 - std::countl_zero(left);
}

// "April, June and November", "30 or 31".
std::string join(const std::vector<std::string>& words, std::string_view last_separator) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? std::string(last_separator) : ", ";
    out += words[i];
  }
  return out;
}

constexpr unsigned kLongestMonth[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

// The instant at which local time `local` fires: a skipped local time at the end of its gap, a
// repeated one at its first occurrence. Non-decreasing in `local`.
sys_seconds instant_of(date::local_seconds local, const date::time_zone& zone) {
  const date::local_info info = zone.get_info(local);
  if (info.result == date::local_info::nonexistent) return info.second.begin;
  return sys_seconds{local.time_since_epoch() - info.first.offset};
}

int year_of(date::local_seconds local) {
  return static_cast<int>(date::year_month_day{date::floor<date::days>(local)}.year());
}

}  // namespace

CronExpression CronExpression::parse(std::string_view text) {
  const std::string_view trimmed = trim(text);
  if (trimmed.empty()) fail("cron expression is empty");
  if (trimmed.size() > kMaxTextBytes) {
    fail("cron expression is " + std::to_string(trimmed.size()) + " bytes long, the limit is " +
         std::to_string(kMaxTextBytes));
  }
  CronExpression cron;
  cron.text_ = std::string(trimmed);
  const std::string_view source = trimmed.front() == '@' ? expand_macro(trimmed) : trimmed;
  const std::vector<std::string_view> fields = split_fields(source);
  if (fields.size() != 5 && fields.size() != 6) {
    fail("expected 5 or 6 fields, got " + std::to_string(fields.size()));
  }
  cron.has_seconds_ = fields.size() == 6;
  const std::size_t first = cron.has_seconds_ ? 1 : 0;
  cron.seconds_ = cron.has_seconds_ ? parse_field(fields[0], kSecond) : 1;
  cron.minutes_ = parse_field(fields[first], kMinute);
  cron.hours_ = static_cast<std::uint32_t>(parse_field(fields[first + 1], kHour));
  cron.days_ = static_cast<std::uint32_t>(parse_field(fields[first + 2], kDayOfMonth));
  cron.months_ = static_cast<std::uint32_t>(parse_field(fields[first + 3], kMonth));
  std::uint64_t weekdays = parse_field(fields[first + 4], kDayOfWeek);
  if (weekdays & (std::uint64_t{1} << 7)) weekdays = (weekdays | 1) & 0x7f;
  cron.weekdays_ = static_cast<std::uint32_t>(weekdays);
  // cronie sets DOM_STAR / DOW_STAR when the field's first character is '*' (so "*/2" counts as
  // unrestricted here too) and applies the OR rule only when neither is set.
  cron.day_or_ = fields[first + 2].front() != '*' && fields[first + 4].front() != '*';
  for (unsigned first_weekday = 0; first_weekday < 7; ++first_weekday) {
    for (unsigned day = 1; day <= 31; ++day) {
      if (cron.weekdays_ & (1u << ((first_weekday + day - 1) % 7))) {
        cron.weekday_days_[first_weekday] |= 1u << day;
      }
    }
  }

  // Every (month, day) pair falls on every weekday within the 400-year Gregorian cycle, so the
  // schedule fires unless the days of month it needs never occur in its months.
  if (!cron.day_or_) {
    bool fires = false;
    for (unsigned month = 1; month <= 12 && !fires; ++month) {
      if (cron.months_ & (1u << month)) {
        fires = (cron.days_ & ((std::uint64_t{2} << kLongestMonth[month]) - 2)) != 0;
      }
    }
    if (!fires) {
      std::vector<std::string> months;
      for (unsigned month = 1; month <= 12; ++month) {
        if (cron.months_ & (1u << month)) months.emplace_back(kMonthFullNames[month - 1]);
      }
      std::vector<std::string> days;
      for (unsigned day = 1; day <= 31; ++day) {
        if (cron.days_ & (1u << day)) days.push_back(std::to_string(day));
      }
      fail("never fires: " + join(months, " and ") + (months.size() == 1 ? " has" : " have") +
           " no day " + join(days, " or "));
    }
  }
  return cron;
}

std::uint32_t CronExpression::days_in(int year, unsigned month) const {
  const date::year_month ym{date::year{year}, date::month{month}};
  const unsigned length = static_cast<unsigned>((ym / date::last).day());
  const unsigned first_weekday = date::weekday{date::local_days{ym / 1}}.c_encoding();
  const std::uint32_t by_weekday = weekday_days_[first_weekday];
  const std::uint32_t matching = day_or_ ? (days_ | by_weekday) : (days_ & by_weekday);
  return matching & static_cast<std::uint32_t>((std::uint64_t{2} << length) - 2);
}

std::optional<seconds> CronExpression::next_time_of_day(int hour, int minute, int second) const {
  for (;;) {
    const int h = next_bit(hours_, hour);
    if (h < 0) return std::nullopt;
    if (h != hour) {
      hour = h;
      minute = 0;
      second = 0;
    }
    const int m = next_bit(minutes_, minute);
    if (m < 0) {
      ++hour;
      minute = 0;
      second = 0;
      continue;
    }
    if (m != minute) {
      minute = m;
      second = 0;
    }
    const int s = next_bit(seconds_, second);
    if (s < 0) {
      ++minute;
      second = 0;
      continue;
    }
    return seconds{hour * 3600 + minute * 60 + s};
  }
}

std::optional<seconds> CronExpression::prev_time_of_day(int hour, int minute, int second) const {
  for (;;) {
    const int h = prev_bit(hours_, hour);
    if (h < 0) return std::nullopt;
    if (h != hour) {
      hour = h;
      minute = 59;
      second = 59;
    }
    const int m = prev_bit(minutes_, minute);
    if (m < 0) {
      --hour;
      minute = 59;
      second = 59;
      continue;
    }
    if (m != minute) {
      minute = m;
      second = 59;
    }
    const int s = prev_bit(seconds_, second);
    if (s < 0) {
      --minute;
      second = 59;
      continue;
    }
    return seconds{hour * 3600 + minute * 60 + s};
  }
}

// The first matching local time at or after `from`; each turn of the loop moves on by at least a
// day, or to the next matching month, so a search ends after a few turns per month it spans.
std::optional<date::local_seconds> CronExpression::next_local(date::local_seconds from,
                                                              int last_year) const {
  const date::local_days day = date::floor<date::days>(from);
  const date::year_month_day ymd{day};
  int year = static_cast<int>(ymd.year());
  int month = static_cast<int>(static_cast<unsigned>(ymd.month()));
  int mday = static_cast<int>(static_cast<unsigned>(ymd.day()));
  const auto time = (from - day).count();
  int hour = static_cast<int>(time / 3600);
  int minute = static_cast<int>(time % 3600 / 60);
  int second = static_cast<int>(time % 60);
  auto next_month = [&] {
    if (++month > 12) {
      month = 1;
      ++year;
    }
    mday = 1;
    hour = minute = second = 0;
  };
  while (year <= last_year) {
    if ((months_ & (1u << month)) == 0) {
      const int next = next_bit(months_, month + 1);
      if (next < 0) {
        ++year;
        month = next_bit(months_, 1);
      } else {
        month = next;
      }
      mday = 1;
      hour = minute = second = 0;
      continue;
    }
    const int matching = next_bit(days_in(year, static_cast<unsigned>(month)), mday);
    if (matching < 0) {
      next_month();
      continue;
    }
    if (matching != mday) {
      mday = matching;
      hour = minute = second = 0;
    }
    if (const auto time_of_day = next_time_of_day(hour, minute, second)) {
      return date::local_days{date::year{year} / month / mday} + *time_of_day;
    }
    ++mday;
    hour = minute = second = 0;
  }
  return std::nullopt;
}

// The last matching local time at or before `from`, mirroring next_local.
std::optional<date::local_seconds> CronExpression::prev_local(date::local_seconds from,
                                                              int first_year) const {
  const date::local_days day = date::floor<date::days>(from);
  const date::year_month_day ymd{day};
  int year = static_cast<int>(ymd.year());
  int month = static_cast<int>(static_cast<unsigned>(ymd.month()));
  int mday = static_cast<int>(static_cast<unsigned>(ymd.day()));
  const auto time = (from - day).count();
  int hour = static_cast<int>(time / 3600);
  int minute = static_cast<int>(time % 3600 / 60);
  int second = static_cast<int>(time % 60);
  auto end_of_day = [&] {
    hour = 23;
    minute = 59;
    second = 59;
  };
  auto prev_month = [&] {
    if (--month < 1) {
      month = 12;
      --year;
    }
    mday = 31;
    end_of_day();
  };
  while (year >= first_year) {
    if ((months_ & (1u << month)) == 0) {
      const int prev = prev_bit(months_, month - 1);
      if (prev < 1) {
        --year;
        month = prev_bit(months_, 12);
      } else {
        month = prev;
      }
      mday = 31;
      end_of_day();
      continue;
    }
    const int matching = prev_bit(days_in(year, static_cast<unsigned>(month)), mday);
    if (matching < 1) {
      prev_month();
      continue;
    }
    if (matching != mday) {
      mday = matching;
      end_of_day();
    }
    if (const auto time_of_day = prev_time_of_day(hour, minute, second)) {
      return date::local_days{date::year{year} / month / mday} + *time_of_day;
    }
    --mday;
    end_of_day();
  }
  return std::nullopt;
}

std::optional<sys_seconds> CronExpression::next_after(sys_seconds after,
                                                      const date::time_zone& zone) const {
  if (!in_range(after)) return std::nullopt;
  const sys_seconds start = after + seconds{1};
  // `from`: the least local time that maps to `start` or later, usually start's own local time.
  date::local_seconds from = zone.to_local(start);
  if (const date::local_info info = zone.get_info(from);
      info.result == date::local_info::ambiguous && instant_of(from, zone) < start) {
    // In the second pass of a repeated hour, the local times left in it already fired in the
    // first pass (before `start`): the search resumes where the repetition ends.
    from = date::local_seconds{info.first.end.time_since_epoch() + info.first.offset};
  } else if (const date::sys_info now = zone.get_info(start); now.begin == start) {
    // `start` ends a gap: the skipped local times fire at `start` itself.
    const date::sys_info before = zone.get_info(start - seconds{1});
    if (before.offset < now.offset)
      from = date::local_seconds{start.time_since_epoch() + before.offset};
  }
  // Every local time from `from` on maps to `start` or later, so the first match is the answer.
  const auto local = next_local(from, year_of(from) + kSearchYears);
  if (!local) return std::nullopt;
  const sys_seconds fires = instant_of(*local, zone);
  if (!in_range(fires)) return std::nullopt;
  return fires;
}

std::optional<sys_seconds> CronExpression::latest_at_or_before(sys_seconds at,
                                                               sys_seconds not_before,
                                                               const date::time_zone& zone) const {
  if (!in_range(at) || at <= not_before) return std::nullopt;
  date::local_seconds until = zone.to_local(at);
  // In the second pass of a repeated hour, every local time of the repetition fired in its first
  // pass, before `at`.
  if (const date::local_info info = zone.get_info(until);
      info.result == date::local_info::ambiguous && instant_of(until, zone) < at) {
    until = date::local_seconds{info.first.end.time_since_epoch() + info.first.offset} - seconds{1};
  }
  int first_year = year_of(until) - kSearchYears;
  if (in_range(not_before))
    first_year = std::max(first_year, year_of(zone.to_local(not_before)) - 1);
  // Every local time after `until` maps after `at`, so the last match at or before it is the
  // latest fire time; if that is not after `not_before`, no earlier one is.
  const auto local = prev_local(until, first_year);
  if (!local) return std::nullopt;
  const sys_seconds fired = instant_of(*local, zone);
  if (fired <= not_before) return std::nullopt;
  return fired;
}

namespace {

const date::time_zone& locate_named_or_local_zone(std::string_view name) {
  if (date::get_tzdb().zones.empty()) {
    throw CronError("the time zone database (/usr/share/zoneinfo) is missing or unreadable");
  }
  if (name.empty()) {
    if (const char* tz = std::getenv("TZ"); tz != nullptr && *tz != '\0') {
      const std::string_view wanted = tz[0] == ':' ? tz + 1 : tz;
      try {
        return *date::locate_zone(std::string(wanted));
      } catch (const std::runtime_error&) {
        // Not an IANA name (a POSIX rule such as "CET-1CEST"): fall back like libc without $TZ.
      }
    }
    try {
      return *date::current_zone();
    } catch (const std::runtime_error&) {
      try {
        return *date::locate_zone("UTC");
      } catch (const std::runtime_error&) {
        throw CronError("the time zone database has no UTC");
      }
    }
  }
  try {
    return *date::locate_zone(std::string(name));
  } catch (const std::runtime_error&) {
    throw CronError("unknown time zone " + quoted(name));
  }
}

}  // namespace

const date::time_zone& cron_zone(std::string_view name) {
  return with_reserved_descriptors([&]() -> const date::time_zone& {
    const date::time_zone& zone = locate_named_or_local_zone(name);
    // The library reads a zone's file at its first use and, when that fails, again at the next:
    // read it now, so that a failure is this call's (and evaluation never throws).
    errno = 0;
    try {
      (void)zone.get_info(date::sys_seconds{});
    } catch (const std::exception& error) {
      const int cause = errno;
      std::string reason =
          "time zone " + quoted(zone.name()) + " cannot be loaded now: " + error.what();
      if (cause != 0) reason += std::string(" (") + std::strerror(cause) + ")";
      throw ZoneUnavailable(reason + "; try again");
    }
    return zone;
  });
}

}  // namespace photon::core
