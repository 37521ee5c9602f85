// Fuzzes request parsing and dispatch: the input is split into lines and fed to a Dispatcher by
// two peers (so publishes fan out), and every line the daemon sends back must be a JSON object
// with a string "type".
#include "daemon/dispatcher.hpp"
#include "fake_clock.hpp"
#include "fake_peer.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

class NullControl final : public photon::daemon::DaemonControl {
 public:
  void request_shutdown() override {}
  photon::daemon::TransportCounters transport_counters() const override { return {}; }
  void wake_at(std::optional<std::chrono::steady_clock::time_point>) override {}
};

void check_reply(const std::string& line) {
  if (line.empty() || line.back() != '\n') std::abort();
  boost::system::error_code ec;
  boost::json::value reply = boost::json::parse(line, ec);
  if (ec || !reply.is_object()) std::abort();
  const boost::json::value* type = reply.get_object().if_contains("type");
  if (type == nullptr || !type->is_string()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  photon::testing::FakeClock clock;
  NullControl control;
  photon::core::TokenAllocator tokens(0, [](std::uint64_t) { return std::optional<std::string>(); });
  photon::daemon::Dispatcher dispatcher({"fuzz", 16, 8, {.max_locks = 16, .max_waiters_per_connection = 4}},
                                        clock, control, tokens);
  photon::testing::FakePeer peers[2];
  for (auto& peer : peers) dispatcher.on_open(peer);

  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t turn = 0;
  while (!input.empty()) {
    const std::size_t end = input.find('\n');
    std::string_view line = input.substr(0, end);
    input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
    if (line.empty()) continue;
    dispatcher.on_line(peers[turn++ % 2], line);
    clock.advance(std::chrono::milliseconds(7));  // lets leases and waits run out along the way
    dispatcher.on_timer();
  }
  for (auto& peer : peers) {
    for (const std::string& line : peer.lines) check_reply(line);
    dispatcher.on_close(peer);
  }
  return 0;
}
