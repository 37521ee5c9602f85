// Fuzzes the broker URL parser: whatever the text, it parses or says what is wrong, and neither
// the message nor the URL as shown (redacted) repeats a password.
#include "broker/redis_url.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = photon::broker::parse_redis_url(text);
  if (auto* url = std::get_if<photon::broker::RedisUrl>(&parsed)) {
    if (url->is_unix() && !url->host.empty()) std::abort();
    // What is shown must not depend on the password at all.
    photon::broker::RedisUrl other = *url;
    other.password = url->password.empty() ? "" : std::string(url->password.size() + 1, '\x01');
    if (url->redacted() != other.redacted()) std::abort();
  }
  return 0;
}
