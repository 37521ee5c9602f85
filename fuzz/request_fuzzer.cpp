// Fuzzes request parsing and dispatch: the input is split into lines and fed, as one sequence, to
// one Dispatcher by two peers (so publishes fan out, and state carried from one request to the
// next is fuzzed too), and every line the daemon sends back must be a JSON object with a string
// "type". A line "!D<request>" (D a digit) sends <request> D+1 times, padded with a field of
// 2^(D+8) bytes, so long runs of large requests go through one parser; a separate parser then
// shows that none of them left heap memory behind. A scripted method host makes commands emit
// their args (channel included), prompt and finish a step per line, so prompt_response, emits
// and callers that leave are fuzzed too.
#include "daemon/dispatcher.hpp"
#include "fake_clock.hpp"
#include "fake_peer.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <list>
#include <string>
#include <string_view>
#include <utility>

namespace {

class NullControl final : public photon::daemon::DaemonControl {
 public:
  void request_shutdown() override {}
  photon::daemon::TransportCounters transport_counters() const override { return {}; }
  void wake_at(std::optional<std::chrono::steady_clock::time_point>) override {}
};

// Methods "run" (emits its args, then returns them) and "ask" (emits, prompts, then returns the
// answer); each call takes one step per input line. Args with "fail" make the call fail.
class ScriptedHost final : public photon::core::MethodHost {
 public:
  ScriptedHost() : methods_{{"run", "emits its args", {}}, {"ask", "prompts", {}}} {}
  const std::vector<photon::core::MethodInfo>& methods() const override { return methods_; }
  void start(photon::core::CallRequest request,
             std::shared_ptr<photon::core::CallObserver> observer) override {
    calls_.push_back({std::move(request), std::move(observer)});
  }
  photon::core::HostStats stats() const override { return {calls_.size(), 0}; }
  void cancel_all(std::function<void()> done) override {
    while (!calls_.empty()) finish(calls_.front(), photon::core::CallStatus::kCancelled);
    done();
  }

  // Moves every call one step on.
  void step() {
    std::vector<Call*> now;
    for (Call& call : calls_) now.push_back(&call);
    for (Call* call : now) {
      switch (call->step++) {
        case 0:
          call->observer->on_emit(call->request.args);
          break;
        case 1:
          if (call->request.method == "ask") {
            call->observer->on_prompt(
                {{"type", "text"}, {"message", "?"}},
                [answer = call->answer](std::optional<boost::json::value> value) {
                  *answer = value ? std::move(*value) : boost::json::value("none");
                });
          }
          break;
        default:
          finish(*call, call->request.args.contains("fail") ? photon::core::CallStatus::kFailed
                                                            : photon::core::CallStatus::kOk);
      }
    }
  }

 private:
  struct Call {
    photon::core::CallRequest request;
    std::shared_ptr<photon::core::CallObserver> observer;
    int step = 0;
    std::shared_ptr<boost::json::value> answer = std::make_shared<boost::json::value>();
  };

  void finish(Call& call, photon::core::CallStatus status) {
    auto observer = call.observer;
    auto outcome = status == photon::core::CallStatus::kOk
                       ? photon::core::CallOutcome::success(*call.answer)
                       : photon::core::CallOutcome::failure(status, "failed");
    calls_.remove_if([&](const Call& other) { return &other == &call; });
    observer->on_finish(std::move(outcome));
  }

  std::vector<photon::core::MethodInfo> methods_;
  std::list<Call> calls_;
};

// The line to send for one input line, and how many times: "!D{..." grows into a padded request.
std::pair<std::string, int> expand(std::string_view line) {
  if (line.size() < 3 || line[0] != '!' || line[1] < '0' || line[1] > '9' || line[2] != '{') {
    return {std::string(line), 1};
  }
  const int digit = line[1] - '0';
  std::string padded = "{\"_pad\":\"";
  padded.append(std::size_t{1} << (digit + 8), 'p');
  padded += '"';
  std::string_view rest = line.substr(3);
  if (!rest.empty() && rest.front() != '}') padded += ',';
  padded.append(rest);
  return {std::move(padded), digit + 1};
}

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
  photon::core::TokenAllocator tokens(0,
                                      [](std::uint64_t) { return std::optional<std::string>(); });
  ScriptedHost host;
  photon::daemon::ServiceOptions options{
      .photon_name = "fuzz",
      .max_subscriptions = 8,
      .lock_limits = {.max_locks = 16, .max_waiters_per_connection = 4},
      .prompt_timeout = std::chrono::milliseconds(20),
      .max_commands_per_connection = 8};
  photon::daemon::Services services(options, clock, tokens, &host);
  photon::daemon::Dispatcher dispatcher({.max_json_depth = 16}, services, control);
  photon::testing::FakePeer peers[2];
  for (auto& peer : peers) dispatcher.on_open(peer);

  photon::protocol::RequestParser parser(64);
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t turn = 0;
  while (!input.empty()) {
    const std::size_t end = input.find('\n');
    std::string_view raw = input.substr(0, end);
    input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
    if (raw.empty()) continue;
    const auto [line, times] = expand(raw);
    for (int i = 0; i < times; ++i) {
      dispatcher.on_line(peers[turn++ % 2], line);
      clock.advance(std::chrono::milliseconds(7));  // lets leases and waits run out along the way
      dispatcher.on_timer();
      host.step();
      parser.parse(line);
    }
    parser.parse("{}");
    if (parser.heap_blocks() != 0) std::abort();  // a request left heap memory in the parser
  }
  for (auto& peer : peers) {
    for (const std::string& line : peer.lines) check_reply(line);
    dispatcher.on_close(peer);
  }
  // Commands whose caller has left run to their end.
  for (int i = 0; i < 3; ++i) host.step();
  if (services.calls().running() != 0) std::abort();
  return 0;
}
