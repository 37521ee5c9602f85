// Fuzzes the browser listener's access rules: the input is a Host, an Origin, an Authorization
// value and a request target, one per line. Whatever they are, a request that passes the checks
// names a loopback host and the listener's port, a token match means the token was sent, and a
// Last-Event-ID names an issued event in its one spelling or none.
#include "channels/event_ids.hpp"
#include "ui/ui_access.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

// The next line of `input` (without its newline); the rest stays in `input`.
std::string_view take_line(std::string_view& input) {
  const std::size_t newline = input.find('\n');
  std::string_view line = input.substr(0, newline);
  input.remove_prefix(newline == std::string_view::npos ? input.size() : newline + 1);
  return line;
}

bool is_listener_host(std::string_view host) {
  for (std::string_view name : {"127.0.0.1", "localhost", "[::1]"}) {
    if (host.size() < name.size()) continue;
    std::string_view head = host.substr(0, name.size());
    bool same = true;
    for (std::size_t i = 0; i < name.size(); ++i) {
      same = same && (head[i] | 0x20) == (name[i] | 0x20);
    }
    std::string_view rest = host.substr(name.size());
    // An empty port ("localhost:") is allowed by RFC 3986 and means the default.
    if (same && (rest.empty() || rest == ":" || rest == ":8080")) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view host = take_line(input);
  const std::string_view origin = take_line(input);
  const std::string_view authorization = take_line(input);
  const std::string_view target = take_line(input);

  const photon::ui::AccessPolicy policy{8080, "0123456789abcdef", {"http://localhost:5173"}};
  const auto refusal = photon::ui::check_host_and_origin(
      policy, host, origin.empty() ? std::nullopt : std::optional<std::string_view>(origin));
  if (!refusal && !is_listener_host(host)) std::abort();
  if (refusal && refusal->status != 403) std::abort();

  const auto parsed = photon::ui::parse_target(target);
  const std::string_view query_token =
      parsed ? std::string_view(parsed->token) : std::string_view();
  if (photon::ui::token_matches(policy, query_token, authorization) &&
      query_token != policy.token && authorization.find(policy.token) == std::string_view::npos) {
    std::abort();
  }
  if (parsed) {
    // A Last-Event-ID names one of the issued events in exactly one spelling, or none.
    static photon::core::EventIds ids = [] {
      photon::core::EventIds issued("0123456789ab");
      for (int i = 0; i < 1000; ++i) issued.issue();
      return issued;
    }();
    if (auto sequence = ids.sequence_of(parsed->last_event_id);
        sequence &&
        (*sequence == 0 || *sequence > 1000 || ids.id_of(*sequence) != parsed->last_event_id)) {
      std::abort();
    }
  }
  return 0;
}
