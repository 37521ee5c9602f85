// Photon name validation and the layout of $PHOTON_DIR.
#include "common/paths.hpp"

#include <cstdlib>

namespace photon {
namespace {

constexpr std::size_t kMaxNameLength = 64;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

std::optional<std::string> photon_name_error(std::string_view name) {
  if (name.empty()) return "photon name is empty";
  if (name.size() > kMaxNameLength) {
    return "photon name is longer than " + std::to_string(kMaxNameLength) + " characters";
  }
  if (!is_alnum(name.front())) {
    return "photon name \"" + std::string(name) + "\" must start with a letter or digit";
  }
  for (char c : name) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
      return "photon name \"" + std::string(name) +
             "\" may contain only letters, digits, '.', '_' and '-'";
    }
  }
  return std::nullopt;
}

std::filesystem::path photon_dir() {
  if (const char* dir = std::getenv("PHOTON_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".photon";
  }
  return ".photon";
}

PhotonPaths photon_paths(std::string_view name) {
  PhotonPaths paths;
  paths.daemons_dir = photon_dir() / "daemons";
  const std::string base(name);
  paths.socket = paths.daemons_dir / (base + ".sock");
  paths.pid_file = paths.daemons_dir / (base + ".pid");
  paths.log_file = paths.daemons_dir / (base + ".log");
  paths.token_file = paths.daemons_dir / (base + ".tokens");
  paths.job_db = paths.daemons_dir / (base + ".db");
  paths.ui_file = paths.daemons_dir / (base + ".ui");
  paths.ui_redirect_file = paths.daemons_dir / (base + ".ui.html");
  return paths;
}

}  // namespace photon
