// The token high-water mark file: one decimal number and a newline.
#include "store/token_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <stdexcept>
#include <system_error>

namespace photon::store {
namespace {

// A mark is at most 20 digits and a newline; anything longer is not a mark.
constexpr std::size_t kMaxMarkBytes = 64;

}  // namespace

std::uint64_t load_token_mark(const PrivateDir& dir, std::string_view name) {
  const std::string shown = dir.shown(name).string();
  int fd = -1;
  try {
    fd = dir.open_file(name, O_RDONLY);
  } catch (const std::system_error& error) {
    if (error.code().value() == ENOENT) return 0;
    throw std::runtime_error("cannot read " + shown + ": " + error.code().message());
  }
  std::string content(kMaxMarkBytes + 1, '\0');
  std::size_t length = 0;
  while (length < content.size()) {
    const ssize_t count = ::read(fd, content.data() + length, content.size() - length);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      const int error = errno;
      ::close(fd);
      throw std::runtime_error("cannot read " + shown + ": " +
                               std::generic_category().message(error));
    }
    if (count == 0) break;
    length += static_cast<std::size_t>(count);
  }
  ::close(fd);
  content.resize(length);
  std::uint64_t mark = 0;
  const char* end = content.data() + content.size();
  auto [parsed_to, error] = std::from_chars(content.data(), end, mark);
  const bool only_newline =
      parsed_to == end || std::string_view(parsed_to, end - parsed_to) == "\n";
  if (error != std::errc() || parsed_to == content.data() || !only_newline) {
    throw std::runtime_error(shown + " does not hold a token mark; refusing to start " +
                             "over and reissue fencing tokens (move it away to reset)");
  }
  return mark;
}

std::optional<std::string> save_token_mark(const PrivateDir& dir, std::string_view name,
                                           std::uint64_t mark) {
  return dir.replace_file(name, std::to_string(mark) + "\n", true);
}

}  // namespace photon::store
