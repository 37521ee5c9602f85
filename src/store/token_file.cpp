// The token high-water mark file: one decimal number and a newline.
#include "store/token_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace photon::store {
namespace {

std::string errno_text(const std::string& what, const std::filesystem::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

}  // namespace

std::uint64_t load_token_mark(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) {
    if (!std::filesystem::exists(path)) return 0;
    throw std::runtime_error("cannot read " + path.string());
  }
  std::stringstream text;
  text << file.rdbuf();
  const std::string content = text.str();
  std::uint64_t mark = 0;
  const char* end = content.data() + content.size();
  auto [parsed_to, error] = std::from_chars(content.data(), end, mark);
  const bool only_newline = parsed_to == end || std::string_view(parsed_to, end - parsed_to) == "\n";
  if (error != std::errc() || parsed_to == content.data() || !only_newline) {
    throw std::runtime_error(path.string() + " does not hold a token mark; refusing to start " +
                             "over and reissue fencing tokens (move it away to reset)");
  }
  return mark;
}

std::optional<std::string> save_token_mark(const std::filesystem::path& path, std::uint64_t mark) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  const std::string text = std::to_string(mark) + "\n";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_text("cannot create", temporary);
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool synced = written && ::fsync(fd) == 0;
  std::string error = synced ? "" : errno_text("cannot write", temporary);
  ::close(fd);
  if (!synced) return error;
  if (::rename(temporary.c_str(), path.c_str()) != 0) return errno_text("cannot rename to", path);
  const int directory = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory >= 0) {
    ::fsync(directory);
    ::close(directory);
  }
  return std::nullopt;
}

}  // namespace photon::store
