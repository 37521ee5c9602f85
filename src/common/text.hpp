// Small text helpers shared by the daemon and photonctl.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace photon {

// `text` with ASCII letters in lower case (header names, host names, answers typed at a prompt).
inline std::string ascii_lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

}  // namespace photon
