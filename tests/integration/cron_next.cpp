// cron_next: the engine's fire times for the croniter differential test (cron_oracle_test.py).
// Reads lines `EXPR<TAB>EPOCH_SECONDS<TAB>N[<TAB>ZONE]` on stdin and prints, per line, the N fire
// times after EPOCH_SECONDS as UTC epoch seconds separated by spaces, or `error: MESSAGE`. ZONE
// defaults to UTC.
#include "jobs/cron.hpp"

#include <iostream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto tab = line.find('\t', start);
    parts.push_back(line.substr(start, tab - start));
    if (tab == std::string::npos) return parts;
    start = tab + 1;
  }
}

std::string fire_times(const std::vector<std::string>& parts) {
  if (parts.size() < 3 || parts.size() > 4)
    return "error: expected EXPR<TAB>EPOCH<TAB>N[<TAB>ZONE]";
  try {
    const auto cron = photon::core::CronExpression::parse(parts[0]);
    const auto& zone = photon::core::cron_zone(parts.size() == 4 ? parts[3] : "UTC");
    std::chrono::sys_seconds after{std::chrono::seconds{std::stoll(parts[1])}};
    const int count = std::stoi(parts[2]);
    std::string out;
    for (int i = 0; i < count; ++i) {
      const auto next = cron.next_after(after, zone);
      if (!next) return out + (out.empty() ? "" : " ") + "none";
      after = *next;
      if (!out.empty()) out += ' ';
      out += std::to_string(after.time_since_epoch().count());
    }
    return out;
  } catch (const photon::core::CronError& error) {
    return std::string("error: ") + error.what();
  } catch (const std::logic_error&) {  // stoll / stoi
    return "error: bad EPOCH or N";
  }
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::cout << fire_times(split_tabs(line)) << '\n';
  }
  return 0;
}
