// Where the Redis broker is: `redis://[[user]:pass@]host[:port][/db]` or `unix:///path[?db=N]`,
// parsed and checked before the daemon starts, and shown without its password.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace photon::broker {

struct RedisUrl {
  // Either a TCP host and port, or a Unix socket path (then `host` is empty).
  std::string host;
  std::uint16_t port = 6379;
  std::string socket_path;
  std::string user;      // empty: AUTH with the password alone (Redis before 6, or "default")
  std::string password;  // empty: no AUTH
  int db = 0;

  bool is_unix() const { return !socket_path.empty(); }
  // The URL as it may be logged and shown in `status`: the password is replaced by "***".
  std::string redacted() const;
};

// The parsed URL, or a message saying what is wrong with `text` (which never repeats a password).
std::variant<RedisUrl, std::string> parse_redis_url(std::string_view text);

}  // namespace photon::broker
