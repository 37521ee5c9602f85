// Redis URL parsing: the forms redis-cli and the Redis clients accept, with errors that say which
// part is wrong and never echo the password.
#include "broker/redis_url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>

namespace photon::broker {
namespace {

constexpr int kMaxDb = 1'000'000;  // Redis's `databases` setting is an int; any real one is smaller

std::optional<int> parse_db(std::string_view text) {
  int value = -1;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0 || value > kMaxDb) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string RedisUrl::redacted() const {
  std::string credentials;
  if (!user.empty() || !password.empty())
    credentials = user + (password.empty() ? "" : ":***") + "@";
  if (is_unix()) {
    return "unix://" + credentials + socket_path + (db != 0 ? "?db=" + std::to_string(db) : "");
  }
  const std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "redis://" + credentials + shown_host + ":" + std::to_string(port) +
         (db != 0 ? "/" + std::to_string(db) : "");
}

std::variant<RedisUrl, std::string> parse_redis_url(std::string_view text) {
  const std::string usage = " (expected redis://[user:password@]HOST[:PORT][/DB] or unix:///PATH)";
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return "broker URL is not a valid URL" + usage;
  const boost::urls::url_view url = *parsed;
  RedisUrl result;
  const std::string scheme(url.scheme());
  if (url.has_userinfo()) {
    result.user = url.user();
    result.password = url.password();
  }
  if (scheme == "unix" || scheme == "redis+unix") {
    result.socket_path = url.path();
    if (result.socket_path.empty() || result.socket_path.front() != '/') {
      return "broker URL " + result.redacted() + ": a unix socket needs an absolute path" + usage;
    }
    // The query is split here rather than with url.params(): Boost.URL 1.81's params iterator
    // reads out of bounds on an empty query before a fragment ("unix:/?#", found by
    // fuzz/redis_url_fuzzer). A database number needs no decoding.
    std::string_view query;
    if (url.has_query()) query = url.encoded_query();
    while (!query.empty()) {
      const std::size_t end = query.find('&');
      const std::string_view parameter = query.substr(0, end);
      query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
      const std::size_t equals = parameter.find('=');
      if (parameter.substr(0, equals) != "db") continue;
      auto db =
          equals == std::string_view::npos ? std::nullopt : parse_db(parameter.substr(equals + 1));
      if (!db) return "broker URL " + result.redacted() + ": db must be a number from 0" + usage;
      result.db = *db;
    }
    return result;
  }
  if (scheme == "rediss")
    return std::string("broker URL: TLS (rediss://) is not supported") + usage;
  if (scheme != "redis") return "broker URL: unknown scheme \"" + scheme + "\"" + usage;
  result.host = url.host_address();
  if (result.host.empty()) return "broker URL: no host" + usage;
  if (url.has_port()) {
    // port_number() wraps above 65535; the text is checked instead.
    const std::string_view text_port = url.port();
    unsigned port = 0;
    auto [end, error] =
        std::from_chars(text_port.data(), text_port.data() + text_port.size(), port);
    if (error != std::errc() || end != text_port.data() + text_port.size() || port == 0 ||
        port > 65535) {
      return "broker URL: the port must be a number from 1 to 65535" + usage;
    }
    result.port = static_cast<std::uint16_t>(port);
  }
  std::string_view path = url.encoded_path();
  if (!path.empty() && path != "/") {
    auto db = parse_db(path.substr(1));
    if (!db) {
      return "broker URL " + result.redacted() + ": the path must be a database number" + usage;
    }
    result.db = *db;
  }
  return result;
}

}  // namespace photon::broker
