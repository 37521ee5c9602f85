// photonctl cron "EXPR" [--tz ZONE] [-n N] [--after TIME]: the next fire times of an expression.
#include "cli/cron_command.hpp"

#include "common/exit_codes.hpp"

#include "jobs/cron.hpp"

#include <date/tz.h>
#include <boost/json.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string_view>

namespace photon::cli {
namespace {

using std::chrono::seconds;
using std::chrono::sys_seconds;

// Reads `text` left to right; every read reports whether it matched.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}
  bool done() const { return pos_ == text_.size(); }
  bool eat(char c) {
    if (done() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool eat_any(std::string_view chars) {
    if (done() || chars.find(text_[pos_]) == std::string_view::npos) return false;
    ++pos_;
    return true;
  }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  // Exactly `count` decimal digits.
  bool digits(int count, int& out) {
    out = 0;
    for (int i = 0; i < count; ++i) {
      if (done() || text_[pos_] < '0' || text_[pos_] > '9') return false;
      out = out * 10 + (text_[pos_++] - '0');
    }
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// Epoch seconds ("1767225600"), or ISO 8601: 2026-03-08, 2026-03-08T01:30, 2026-03-08 01:30:00,
// with Z, +01:00, -0500 or -05 for an offset; without one, a local time in `zone` (a skipped one
// is the end of its gap, a repeated one its first occurrence, as for fire times).
std::optional<sys_seconds> parse_instant(std::string_view text, const date::time_zone& zone) {
  const std::string_view digits = !text.empty() && text[0] == '-' ? text.substr(1) : text;
  if (!digits.empty() && digits.size() <= 12 &&
      digits.find_first_not_of("0123456789") == std::string_view::npos) {
    const long long value = std::stoll(std::string(digits));
    return sys_seconds{seconds{text[0] == '-' ? -value : value}};
  }
  Cursor in(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!in.digits(4, year) || !in.eat('-') || !in.digits(2, month) || !in.eat('-') ||
      !in.digits(2, day)) {
    return std::nullopt;
  }
  if (in.eat_any("Tt ")) {
    if (!in.digits(2, hour) || !in.eat(':') || !in.digits(2, minute)) return std::nullopt;
    if (in.eat(':') && !in.digits(2, second)) return std::nullopt;
  }
  std::optional<seconds> offset;
  if (in.eat_any("Zz")) {
    offset = seconds{0};
  } else if (in.peek() == '+' || in.peek() == '-') {
    const int sign = in.peek() == '-' ? -1 : 1;
    in.eat_any("+-");
    int hours = 0, minutes = 0;
    if (!in.digits(2, hours)) return std::nullopt;
    if (!in.done()) {
      in.eat(':');
      if (!in.digits(2, minutes) || minutes > 59) return std::nullopt;
    }
    offset = seconds{sign * (hours * 3600 + minutes * 60)};
  }
  if (!in.done()) return std::nullopt;
  const date::year_month_day ymd{date::year{year}, date::month{static_cast<unsigned>(month)},
                                 date::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  const seconds time_of_day{hour * 3600 + minute * 60 + second};
  if (offset) return sys_seconds{date::sys_days{ymd}} + time_of_day - *offset;
  return zone.to_sys(date::local_days{ymd} + time_of_day, date::choose::earliest);
}

// "-0500", or "-05:00" with `colon`.
std::string offset_text(seconds offset, bool colon) {
  const long long minutes = std::abs(offset.count()) / 60;
  const auto two = [](long long value) {
    return std::string(1, static_cast<char>('0' + value / 10 % 10)) +
           static_cast<char>('0' + value % 10);
  };
  return (offset < seconds{0} ? "-" : "+") + two(minutes / 60) + (colon ? ":" : "") +
         two(minutes % 60);
}

}  // namespace

CronCommand::CronCommand(CLI::App& app) {
  command_ = app.add_subcommand(
      "cron", "Print the next fire times of a cron expression (computed here; no daemon needed)");
  command_
      ->add_option("expression", expression_,
                   "5 fields (minute hour day-of-month month day-of-week), 6 with a leading "
                   "second field, or @yearly @monthly @weekly @daily @hourly ...; quote it")
      ->required();
  command_->add_option("--tz", zone_, "IANA time zone (default: the local one)");
  command_->add_option("-n,--count", count_, "How many fire times")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command_->add_option("--after", after_,
                       "Start strictly after this time: epoch seconds or ISO 8601 "
                       "(2026-03-08T01:30:00-05:00; without an offset, local time in --tz); "
                       "default: now");
  command_->footer(
      "Each fire time is printed as local time in the zone, with its UTC offset and abbreviation:\n"
      "2026-11-27 09:00:00 -0500 EST. A local time skipped by a DST change fires at the end of\n"
      "the gap, a repeated one at its first occurrence (see docs/scheduler.md).\n"
      "Exit status: 0 ok, 1 bad expression or time zone, 2 usage.");
}

int CronCommand::run(bool json) const {
  const date::time_zone* zone = nullptr;
  std::optional<core::CronExpression> cron;
  try {
    cron = core::CronExpression::parse(expression_);
    zone = &core::cron_zone(zone_);
  } catch (const core::CronError& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  }
  sys_seconds after = date::floor<seconds>(std::chrono::system_clock::now());
  if (after_) {
    const auto parsed = parse_instant(*after_, *zone);
    if (!parsed) {
      std::cerr << "photonctl: --after: expected epoch seconds or an ISO 8601 time such as "
                   "2026-03-08T01:30:00-05:00, got \""
                << *after_ << "\"\n";
      return kExitUsage;
    }
    after = *parsed;
  }

  boost::json::array times;
  for (int i = 0; i < count_; ++i) {
    const auto next = cron->next_after(after, *zone);
    if (!next) {  // only for a start outside years 1..8999
      std::cerr << "photonctl: no fire time after epoch " << after.time_since_epoch().count()
                << "\n";
      return kExitFailed;
    }
    after = *next;
    const date::sys_info info = zone->get_info(*next);
    const date::local_seconds local{next->time_since_epoch() + info.offset};
    if (json) {
      times.push_back({{"time", date::format("%FT%T", local) + offset_text(info.offset, true)},
                       {"epoch", next->time_since_epoch().count()},
                       {"abbrev", info.abbrev}});
    } else {
      std::cout << date::format("%F %T", local) << ' ' << offset_text(info.offset, false) << ' '
                << info.abbrev << "\n";
    }
  }
  if (json) {
    std::cout << boost::json::serialize(boost::json::object{{"expression", cron->text()},
                                                            {"timeZone", zone->name()},
                                                            {"next", std::move(times)}})
              << "\n";
  }
  return kExitOk;
}

}  // namespace photon::cli
