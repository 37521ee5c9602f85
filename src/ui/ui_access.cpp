// The browser listener's access rules: Host and Origin names, the token, the request target.
#include "ui/ui_access.hpp"

#include "common/text.hpp"
#include "protocol/error_messages.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>

namespace photon::ui {
namespace {

namespace words = protocol::messages::http;

bool is_loopback_name(std::string_view host) {
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]";
}

// Splits "name:port" / "[v6]:port" / "name" into the name and the port text (empty if none).
std::pair<std::string_view, std::string_view> split_host(std::string_view host) {
  if (host.starts_with('[')) {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) return {host, {}};
    std::string_view rest = host.substr(close + 1);
    // Only ":port" may follow the brackets ("[::1]8080" names no loopback host).
    if (!rest.empty() && !rest.starts_with(':')) return {host, {}};
    if (rest.starts_with(':')) rest.remove_prefix(1);
    return {host.substr(0, close + 1), rest};
  }
  const std::size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) return {host, {}};
  return {host.substr(0, colon), host.substr(colon + 1)};
}

bool same_secret(std::string_view given, std::string_view expected) {
  if (given.size() != expected.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < given.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ expected[i]);
  }
  return difference == 0;
}

}  // namespace

std::optional<Refusal> check_host_and_origin(const AccessPolicy& policy,
                                             std::optional<std::string_view> host,
                                             std::optional<std::string_view> origin) {
  const std::string port = std::to_string(policy.port);
  if (!host) return Refusal{403, std::string(words::kHostMissing)};
  const std::string host_text = ascii_lower(*host);
  const auto [name, host_port] = split_host(host_text);
  if (!is_loopback_name(name) || (!host_port.empty() && host_port != port)) {
    return Refusal{403, protocol::fill_message(words::kHostNotLoopback, {*host, port})};
  }
  if (!origin) return std::nullopt;
  const std::string origin_text = ascii_lower(*origin);
  const bool own = origin_text == "http://127.0.0.1:" + port ||
                   origin_text == "http://localhost:" + port ||
                   origin_text == "http://[::1]:" + port;
  if (own || std::find(policy.allowed_origins.begin(), policy.allowed_origins.end(), origin_text) !=
                 policy.allowed_origins.end()) {
    return std::nullopt;
  }
  return Refusal{403, protocol::fill_message(words::kOriginNotAllowed, *origin)};
}

std::optional<std::string> cors_origin(const AccessPolicy& policy,
                                       std::optional<std::string_view> origin) {
  if (!origin) return std::nullopt;
  const std::string origin_text = ascii_lower(*origin);
  const auto found =
      std::find(policy.allowed_origins.begin(), policy.allowed_origins.end(), origin_text);
  if (found == policy.allowed_origins.end()) return std::nullopt;
  return *found;
}

bool token_matches(const AccessPolicy& policy, std::string_view query_token,
                   std::optional<std::string_view> authorization) {
  if (policy.token.empty()) return false;
  if (!query_token.empty() && same_secret(query_token, policy.token)) return true;
  constexpr std::string_view kScheme = "bearer ";
  if (!authorization || authorization->size() <= kScheme.size() ||
      ascii_lower(authorization->substr(0, kScheme.size())) != kScheme) {
    return false;
  }
  return same_secret(authorization->substr(kScheme.size()), policy.token);
}

std::optional<UiTarget> parse_target(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  UiTarget result;
  result.path = url->path();
  for (const auto& param : url->params()) {
    if (param.key == "token") result.token = param.value;
    if (param.key == "channel") result.channels.push_back(param.value);
    if (param.key == "lastEventId") result.last_event_id = param.value;
  }
  return result;
}

}  // namespace photon::ui
