// Who may use the browser listener, decided from a request's Host, Origin, token and target alone:
// pure functions, unit-tested and fuzzed apart from any socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace photon::ui {

struct AccessPolicy {
  std::uint16_t port = 0;  // the listener's own port
  std::string token;
  // Origins allowed besides the listener's own, lower case, e.g. "http://localhost:5173".
  std::vector<std::string> allowed_origins;
};

struct Refusal {
  unsigned status;  // 400 or 403
  std::string message;
};

// Refuses a request whose Host is not a loopback name with the listener's port (or none): a page
// of another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name. Then
// refuses an Origin other than the listener's own and the allowed ones; requests without Origin
// (curl, scripts) pass, as browsers always send one with a WebSocket or a cross-origin request.
std::optional<Refusal> check_host_and_origin(const AccessPolicy& policy,
                                             std::optional<std::string_view> host,
                                             std::optional<std::string_view> origin);

// The origin to name in Access-Control-Allow-Origin: the allowed entry (as configured) that a
// request's Origin names, when that is not the listener's own (same-origin requests need no CORS).
// Call after check_host_and_origin passed.
std::optional<std::string> cors_origin(const AccessPolicy& policy,
                                       std::optional<std::string_view> origin);

// Whether `query_token` (from ?token=) or an `Authorization: Bearer` header carries the token.
// The comparison takes the same time however much of a guess is right.
bool token_matches(const AccessPolicy& policy, std::string_view query_token,
                   std::optional<std::string_view> authorization);

// A request target, decoded.
struct UiTarget {
  std::string path;
  std::string token;                  // ?token=
  std::vector<std::string> channels;  // ?channel= (repeatable)
  std::string last_event_id;          // ?lastEventId=
};
// Nothing when `target` is not an origin-form target ("/path?query").
std::optional<UiTarget> parse_target(std::string_view target);

}  // namespace photon::ui
