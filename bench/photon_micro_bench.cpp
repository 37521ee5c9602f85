// photon_micro_bench: Google Benchmark micro-benchmarks of the publish hot path in process:
// request parsing and validation, channel_message serialization, channel matching/fan-out, and
// recording each publish in the replay window.
#include "channels/channel_registry.hpp"
#include "channels/replay_window.hpp"
#include "common/defaults.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace {

using photon::SharedBytes;
using photon::core::ChannelRegistry;
namespace protocol = photon::protocol;

constexpr std::size_t kMaxJsonDepth = 64;
constexpr std::size_t kSubscriptionLimit = 4096;

// The publish line photon_bench sends: a 128-byte string message.
std::string publish_line() {
  return R"({"type":"publish","id":"42","channel":"bench","message":")" + std::string(128, 'x') +
         R"("})";
}

class CountingSubscriber final : public photon::core::Subscriber {
 public:
  void deliver(const SharedBytes& line) override { bytes_ += line->size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_ = 0;
};

void parse_ping(benchmark::State& state) {
  protocol::RequestParser parser(kMaxJsonDepth);
  const std::string line = R"({"type":"ping","id":"1"})";
  for (auto _ : state) {
    auto result = parser.parse(line);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(parse_ping);

void parse_and_validate_publish(benchmark::State& state) {
  protocol::RequestParser parser(kMaxJsonDepth);
  const std::string line = publish_line();
  constexpr std::array kRequired{protocol::Field::kChannel, protocol::Field::kMessage};
  for (auto _ : state) {
    auto result = parser.parse(line);
    const auto& request = std::get<protocol::Request>(result);
    auto error = protocol::validate_fields(request, kRequired, {});
    benchmark::DoNotOptimize(error);
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(line.size()));
}
BENCHMARK(parse_and_validate_publish);

void serialize_channel_message(benchmark::State& state) {
  const boost::json::value message(std::string(128, 'x'));
  std::uint64_t sequence = 0;
  for (auto _ : state) {
    std::string line =
        protocol::channel_message_line(++sequence, "bench", "5f0c2a9e41d7-1", message);
    benchmark::DoNotOptimize(line);
  }
}
BENCHMARK(serialize_channel_message);

// One publish to a channel with state.range(0) exact subscribers; the line is prebuilt, so this
// measures matching and the hand-off, not serialization.
void publish_exact(benchmark::State& state) {
  ChannelRegistry registry;
  std::vector<std::unique_ptr<CountingSubscriber>> subscribers;
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    subscribers.push_back(std::make_unique<CountingSubscriber>());
    registry.subscribe(*subscribers.back(), "bench", kSubscriptionLimit);
  }
  const SharedBytes line = photon::make_shared_bytes(std::string(200, 'x'));
  for (auto _ : state) {
    benchmark::DoNotOptimize(registry.publish("bench", nullptr, [&] { return line; }));
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * state.range(0));
  for (auto& subscriber : subscribers) registry.unsubscribe_all(*subscriber);
}
BENCHMARK(publish_exact)->Arg(1)->Arg(8)->Arg(64);

// A registry busy with other channels and patterns of several lengths: the publish must find
// the 8 subscribers of "board:*" (and not the others) for "board:a:b".
void publish_wildcard_among_others(benchmark::State& state) {
  ChannelRegistry registry;
  std::vector<std::unique_ptr<CountingSubscriber>> subscribers;
  auto add = [&](const std::string& channel) {
    subscribers.push_back(std::make_unique<CountingSubscriber>());
    registry.subscribe(*subscribers.back(), channel, kSubscriptionLimit);
  };
  for (int i = 0; i < 1000; ++i) add("room:" + std::to_string(i));
  for (int i = 0; i < 16; ++i) add(std::string(std::size_t(i + 1), 'q') + "*");
  for (int i = 0; i < 8; ++i) add("board:*");
  const SharedBytes line = photon::make_shared_bytes(std::string(200, 'x'));
  for (auto _ : state) {
    benchmark::DoNotOptimize(registry.publish("board:a:b", nullptr, [&] { return line; }));
  }
  for (auto& subscriber : subscribers) registry.unsubscribe_all(*subscriber);
}
BENCHMARK(publish_wildcard_among_others);

// One publish recorded in a replay window with photond's default bounds, once the window is full
// (each record also gives up the oldest message): on one channel, round robin on state.range(0)
// channels, or with --replay-messages 0 (state.range(0) == 0, the window off).
void replay_window_record(benchmark::State& state) {
  namespace defaults = photon::defaults;
  const std::int64_t channel_count = state.range(0);
  photon::core::ReplayWindow window({.messages = channel_count == 0 ? 0 : defaults::kReplayMessages,
                                     .bytes = defaults::kReplayBytes,
                                     .channel_messages = defaults::kReplayChannelMessages,
                                     .channel_bytes = defaults::kReplayChannelBytes,
                                     .age = defaults::kReplayAge});
  std::vector<std::string> channels;
  for (std::int64_t i = 0; i < std::max<std::int64_t>(channel_count, 1); ++i)
    channels.push_back("bench:" + std::to_string(i));
  const SharedBytes line = photon::make_shared_bytes(std::string(200, 'x'));
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t id = 0;
  const auto record = [&] {
    ++id;
    window.record(id, channels[id % channels.size()], line, now);
  };
  for (std::size_t i = 0; i < defaults::kReplayMessages * 2; ++i) record();
  for (auto _ : state) record();
  benchmark::DoNotOptimize(window.messages());
}
BENCHMARK(replay_window_record)->Arg(0)->Arg(1)->Arg(8)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
