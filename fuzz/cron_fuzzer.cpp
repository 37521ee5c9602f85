// Fuzzes the cron engine: arbitrary text is parsed. A parse error must be one printable line. An
// expression that parses must give, from fixed instants in UTC and in New York (next to both DST
// changes, inside the repeated hour, far ahead), a next fire time after each, on which
// latest_at_or_before agrees. libFuzzer's -timeout catches an evaluation that does not end.
#include "jobs/cron.hpp"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace {

using std::chrono::seconds;
using std::chrono::sys_seconds;

sys_seconds at(int year, unsigned month, unsigned day, int hour, int minute, int second) {
  return date::sys_days{date::year{year} / month / day} + std::chrono::hours{hour} +
         std::chrono::minutes{minute} + seconds{second};
}

void check_message(std::string_view message) {
  if (message.empty()) std::abort();
  for (char c : message) {
    if (c < 0x20 || c > 0x7e) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::array<const date::time_zone*, 2> zones = {
      &photon::core::cron_zone("UTC"), &photon::core::cron_zone("America/New_York")};
  static const std::array<sys_seconds, 7> starts = {
      at(1970, 1, 1, 0, 0, 0),    at(2026, 3, 8, 6, 59, 59),  // a second before New York's gap
      at(2026, 3, 8, 6, 30, 0),   at(2026, 11, 1, 6, 15, 0),  // in New York's repeated hour
      at(2026, 11, 1, 5, 59, 59), at(2099, 12, 31, 23, 59, 59), at(5000, 6, 15, 0, 0, 0)};

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<photon::core::CronExpression> cron;
  try {
    cron = photon::core::CronExpression::parse(text);
  } catch (const photon::core::CronError& error) {
    check_message(error.what());
    return 0;
  }
  if (cron->text().empty() || cron->text().size() > photon::core::CronExpression::kMaxTextBytes) {
    std::abort();
  }
  for (const date::time_zone* zone : zones) {
    for (const sys_seconds after : starts) {
      const auto next = cron->next_after(after, *zone);
      if (!next || *next <= after) std::abort();
      if (cron->latest_at_or_before(*next, after, *zone) != next) std::abort();
      if (cron->latest_at_or_before(*next - seconds{1}, after, *zone)) std::abort();
    }
  }
  return 0;
}
