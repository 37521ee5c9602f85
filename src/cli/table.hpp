// Aligned text tables for photonctl's human-readable output.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace photon::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Prints the header and rows with columns padded to their widest cell.
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "3d 4h", "2h 5m", "4m 10s", "12s", "850ms": the two largest units of a duration.
std::string human_duration(long long millis);

}  // namespace photon::cli
