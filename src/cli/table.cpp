// Table layout and duration formatting for photonctl.
#include "cli/table.hpp"

#include <algorithm>

namespace photon::cli {

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> widths(header_.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  widen(header_);
  for (const auto& row : rows_) widen(row);
  auto print_row = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      out << row[i];
      if (i + 1 < row.size()) out << std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << '\n';
  };
  print_row(header_);
  for (const auto& row : rows_) print_row(row);
}

std::string human_duration(long long millis) {
  if (millis < 1000) return std::to_string(millis) + "ms";
  long long seconds = millis / 1000;
  const long long days = seconds / 86400;
  const long long hours = seconds % 86400 / 3600;
  const long long minutes = seconds % 3600 / 60;
  seconds %= 60;
  if (days > 0) return std::to_string(days) + "d " + std::to_string(hours) + "h";
  if (hours > 0) return std::to_string(hours) + "h " + std::to_string(minutes) + "m";
  if (minutes > 0) return std::to_string(minutes) + "m " + std::to_string(seconds) + "s";
  return std::to_string(seconds) + "s";
}

}  // namespace photon::cli
