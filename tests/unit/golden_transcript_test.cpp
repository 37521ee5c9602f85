// The golden transcript: thousands of requests of every type (errors included) from several
// connections, through the dispatcher and its services on a fake clock, and every byte answered,
// compared with tests/golden/dispatch_transcript.txt. A refactoring must leave the bytes alone;
// a deliberate change of the wire regenerates the file (PHOTON_GOLDEN_UPDATE=1) and the diff is
// reviewed with the change.
#include "daemon/dispatcher.hpp"
#include "fake_clock.hpp"
#include "fake_method_host.hpp"
#include "fake_peer.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace photon::daemon {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kSeed = 20261207;
constexpr std::size_t kSteps = 4000;
constexpr std::size_t kPeers = 4;

// The dispatcher's view of the daemon: shutdowns and wake-ups are recorded in the transcript.
class TranscriptControl final : public DaemonControl {
 public:
  explicit TranscriptControl(std::ostringstream& out) : out_(out) {}
  void request_shutdown() override { out_ << "# shutdown requested\n"; }
  TransportCounters transport_counters() const override { return {2, 1}; }
  void wake_at(std::optional<std::chrono::steady_clock::time_point> when) override { wake = when; }
  std::optional<std::chrono::steady_clock::time_point> wake;

 private:
  std::ostringstream& out_;
};

// Methods whose behaviour the transcript plays: echo returns its call, emit emits a channel event
// and progress, ask prompts and returns the answer, fail fails, hang runs until the driver ends it.
class TranscriptHost final : public testing::FakeMethodHost {
 public:
  TranscriptHost()
      : FakeMethodHost({{"echo", "Returns its call", {{"text", "string", "Anything", false}}},
                        {"emit", "Emits on board:a", {}},
                        {"ask", "Prompts", {}},
                        {"fail", "Fails", {}},
                        {"hang", "Runs until stopped", {{"n", "number", "A number", true}}}}) {}
};

// A deterministic source of choices (std::uniform_int_distribution differs between libraries).
class Choices {
 public:
  explicit Choices(std::uint64_t seed) : engine_(seed) {}
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }
  bool one_in(std::size_t n) { return below(n) == 0; }
  template <typename T, std::size_t N>
  const T& pick(const T (&items)[N]) {
    return items[below(N)];
  }

 private:
  std::mt19937_64 engine_;
};

std::string escaped(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// The daemon's pid in a status reply, which differs from run to run, as PID.
std::string without_pid(std::string line) {
  constexpr std::string_view kPid = "\"pid\":";
  const std::size_t at = line.find(kPid);
  if (at == std::string::npos) return line;
  std::size_t end = at + kPid.size();
  while (end < line.size() && line[end] >= '0' && line[end] <= '9') ++end;
  return line.replace(at + kPid.size(), end - at - kPid.size(), "PID");
}

class Transcript {
 public:
  Transcript()
      : control_(out_),
        services_(options(), clock_, tokens_, &host_),
        dispatcher_({.max_json_depth = 8}, services_, control_),
        choices_(kSeed) {
    for (std::size_t i = 0; i < kPeers; ++i) open(i);
  }
  ~Transcript() {
    for (std::size_t i = 0; i < kPeers; ++i) {
      if (peers_[i]) dispatcher_.on_close(*peers_[i]);
    }
  }

  std::string run() {
    for (std::size_t step = 0; step < kSteps; ++step) {
      const std::size_t peer = choices_.below(kPeers);
      send(peer, request(peer));
      play_methods();
      flush();
      if (choices_.one_in(6)) advance();
      if (choices_.one_in(150)) reopen(choices_.below(kPeers));
    }
    return out_.str();
  }

 private:
  static ServiceOptions options() {
    ServiceOptions result{"golden"};
    result.epoch = "0123456789ab";
    result.max_subscriptions = 12;
    result.prompt_timeout = 20s;
    result.max_commands_per_connection = 4;
    result.max_running_commands = 10;
    result.max_jobs = 6;
    result.lock_limits.max_locks = 3;
    result.lock_limits.max_waiters_per_connection = 2;
    return result;
  }

  void open(std::size_t i) {
    peers_[i] = std::make_unique<testing::FakePeer>();
    dispatcher_.on_open(*peers_[i]);
    pending_commands_[i].clear();
  }
  void reopen(std::size_t i) {
    out_ << "# close " << i << "\n";
    dispatcher_.on_close(*peers_[i]);
    play_methods();
    flush();
    open(i);
  }

  void send(std::size_t peer, const std::string& line) {
    out_ << "> " << peer << " " << escaped(line) << "\n";
    dispatcher_.on_line(*peers_[peer], line);
  }

  void flush() {
    for (std::size_t i = 0; i < kPeers; ++i) {
      for (std::string line : peers_[i]->take()) {
        // Every line the daemon sends ends with one newline; the transcript shows the rest.
        const bool terminated = !line.empty() && line.back() == '\n';
        if (terminated) line.pop_back();
        out_ << "< " << i << " " << without_pid(escaped(line))
             << (terminated ? "" : " (NO NEWLINE)") << "\n";
      }
      if (peers_[i]->closing) {
        out_ << "# " << i << " closed by the daemon\n";
        dispatcher_.on_close(*peers_[i]);
        play_methods();
        open(i);
      }
    }
  }

  void advance() {
    static constexpr std::chrono::milliseconds kSteps[] = {1ms, 250ms, 1s, 5s, 31s, 61s};
    const auto by = choices_.pick(kSteps);
    clock_.advance(by);
    out_ << "~ +" << by.count() << "ms\n";
    if (control_.wake && *control_.wake <= clock_.steady()) {
      dispatcher_.on_timer();
      play_methods();
      flush();
    }
  }

  // Plays the part of each method started since the last look, and ends some hanging ones.
  void play_methods() {
    while (played_ < host_.calls.size()) {
      testing::FakeMethodHost::Started& call = host_.calls[played_++];
      const std::size_t number = played_;
      out_ << "# call " << number << " " << call.request.method << " "
           << boost::json::serialize(call.request.args) << " session=" << call.request.session_id
           << " client=" << call.request.client_type << "\n";
      auto observer = call.observer;
      const std::string& method = call.request.method;
      if (method == "echo") {
        observer->on_finish(core::CallOutcome::success(boost::json::object{
            {"args", call.request.args}, {"session", call.request.session_id}}));
      } else if (method == "emit") {
        observer->on_emit({{"channel", "board:a"}, {"event", "moved"}, {"data", number}});
        observer->on_emit({{"progress", 50}, {"message", "half"}});
        observer->on_finish(core::CallOutcome::success(nullptr));
      } else if (method == "ask") {
        std::ostringstream& out = out_;
        observer->on_prompt(
            {{"type", "text"}, {"message", "Name?"}, {"default", "x"}},
            [weak = std::weak_ptr<core::CallObserver>(observer), number,
             &out](std::optional<boost::json::value> answer) {
              out << "# call " << number << " answered "
                  << (answer ? boost::json::serialize(*answer) : std::string("nothing")) << "\n";
              const auto observer = weak.lock();
              if (!observer) return;
              observer->on_finish(
                  core::CallOutcome::success(answer ? std::move(*answer) : nullptr));
            });
      } else if (method == "fail") {
        observer->on_finish(core::CallOutcome::failure(core::CallStatus::kFailed, "boom"));
      } else {
        hanging_.push_back(observer);
      }
    }
    if (!hanging_.empty() && choices_.one_in(4)) {
      out_ << "# a hanging call ends\n";
      auto observer = hanging_.front();
      hanging_.pop_front();
      observer->on_finish(core::CallOutcome::success("done"));
    }
  }

  std::string id() { return "r" + std::to_string(next_id_++); }

  std::string json_value(int depth = 0) {
    switch (choices_.below(depth > 3 ? 4 : 7)) {
      case 0:
        return std::to_string(static_cast<long long>(choices_.below(2000)) - 1000);
      case 1:
        return choices_.pick({"\"plain\"", "\"caf\xc3\xa9\"", "\"tab\\tand \\\"quote\\\"\"",
                              "\"\\u00e9\\ud83d\\ude00\"", "\"\""});
      case 2:
        return choices_.pick({"true", "false", "null", "1.5e3", "-0"});
      case 3:
        return "\"" + std::string(choices_.below(40), 'x') + "\"";
      case 4: {
        std::string out = "[";
        for (std::size_t i = 0, n = choices_.below(4); i < n; ++i) {
          out += (i ? "," : "") + json_value(depth + 1);
        }
        return out + "]";
      }
      default: {
        std::string out = "{";
        for (std::size_t i = 0, n = choices_.below(4); i < n; ++i) {
          out += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + json_value(depth + 1);
        }
        return out + "}";
      }
    }
  }

  std::string channel() {
    return choices_.pick({"board:a", "board:b", "board:*", "metrics:cpu", "*", "a:b:c", "jobs:*",
                          "webhooks:*", "", "bad channel", "board:", "x:*:y", "\xff"});
  }
  std::string lock_name() { return choices_.pick({"db", "cache", "deploy", "", "a b"}); }
  std::string method() { return choices_.pick({"echo", "emit", "ask", "fail", "hang", "nope"}); }
  std::string job_id() { return choices_.pick({"nightly", "tick", "every5", "bad id!", ""}); }

  // One request line for `peer`, well-formed most of the time.
  std::string request(std::size_t peer) {
    const std::string rid = id();
    const std::string id_member = "\"id\":\"" + rid + "\"";
    switch (choices_.below(22)) {
      case 0:
        return "{\"type\":\"ping\"," + id_member + "}";
      case 1:
        return choices_.one_in(3) ? "{\"type\":\"status\"}"
                                  : "{\"type\":\"status\"," + id_member + "}";
      case 2:
      case 3:
        return "{\"type\":\"subscribe\"," + id_member + ",\"channel\":\"" + channel() + "\"}";
      case 4:
        return "{\"type\":\"unsubscribe\"," + id_member + ",\"channel\":\"" + channel() + "\"}";
      case 5:
      case 6:
      case 7:
        return "{\"type\":\"publish\"," + id_member + ",\"channel\":\"" + channel() +
               "\",\"message\":" + json_value() + "}";
      case 8:
      case 9: {
        std::string line =
            "{\"type\":\"lock\"," + id_member + ",\"lockName\":\"" + lock_name() + "\"";
        if (choices_.one_in(2)) line += ",\"holder\":\"h" + std::to_string(peer) + "\"";
        if (choices_.one_in(2)) {
          line += ",\"leaseMs\":" +
                  std::string(choices_.pick({"1000", "30000", "0", "-5", "\"9\"", "99999999999"}));
        }
        if (choices_.one_in(2)) {
          line += ",\"waitMs\":" + std::string(choices_.pick({"0", "2000", "60000", "-1"}));
        }
        if (choices_.one_in(3)) line += ",\"releaseOnDisconnect\":true";
        return line + "}";
      }
      case 10: {
        std::string line =
            "{\"type\":\"unlock\"," + id_member + ",\"lockName\":\"" + lock_name() + "\"";
        if (choices_.one_in(2))
          line += ",\"holder\":\"h" + std::to_string(choices_.below(4)) + "\"";
        return line + "}";
      }
      case 11:
        return choices_.one_in(2) ? "{\"type\":\"list_locks\"," + id_member + "}"
                                  : "{\"type\":\"query_lock\"," + id_member + ",\"lockName\":\"" +
                                        lock_name() + "\"}";
      case 12:
      case 13: {
        std::string line =
            "{\"type\":\"command\"," + id_member + ",\"method\":\"" + method() + "\"";
        if (choices_.one_in(2)) line += ",\"args\":" + json_value(3);
        if (choices_.one_in(2)) line += ",\"sessionId\":\"s" + std::to_string(peer) + "\"";
        if (choices_.one_in(3)) line += ",\"clientType\":\"cli\"";
        pending_commands_[peer].push_back(rid);
        return line + "}";
      }
      case 14: {
        std::string target = rid;
        if (!pending_commands_[peer].empty() && !choices_.one_in(4)) {
          target = pending_commands_[peer][choices_.below(pending_commands_[peer].size())];
        }
        return "{\"type\":\"prompt_response\",\"id\":\"" + target +
               "\",\"promptValue\":" + json_value(2) + "}";
      }
      case 15:
        return "{\"type\":\"list_methods\"," + id_member + "}";
      case 16: {
        std::string line = "{\"type\":\"schedule\"," + id_member + ",\"jobId\":\"" + job_id() +
                           "\",\"method\":\"" + method() + "\",\"cron\":\"" +
                           choices_.pick({"*/5 * * * * *", "0 * * * *", "@hourly", "61 * * * *",
                                          "* * *", "0 0 30 2 *", "*/30 * * * * *"}) +
                           "\"";
        if (choices_.one_in(3)) line += ",\"args\":{\"n\":1}";
        if (choices_.one_in(4)) line += ",\"timezone\":\"Europe/Berlin\"";
        if (choices_.one_in(6)) line += ",\"timezone\":\"Mars/Base\"";
        return line + "}";
      }
      case 17:
        return "{\"type\":\"unschedule\"," + id_member + ",\"jobId\":\"" + job_id() + "\"}";
      case 18:
        return choices_.one_in(2)
                   ? "{\"type\":\"list_jobs\"," + id_member + "}"
                   : "{\"type\":\"job_history\"," + id_member + ",\"jobId\":\"" + job_id() + "\"}";
      case 19:
        return "{\"type\":\"run_job\"," + id_member + ",\"jobId\":\"" + job_id() + "\"}";
      case 20:
        return choices_.one_in(20) ? "{\"type\":\"shutdown\"," + id_member + "}"
                                   : "{\"type\":\"ping\"}";
      default:
        return choices_.pick({"", "not json", "[1,2]", "{\"type\":\"nope\",\"id\":\"x\"}",
                              "{\"id\":\"no-type\"}", "{\"type\":7,\"id\":\"t\"}",
                              "{\"type\":\"ping\",\"id\":5}",
                              "{\"type\":\"publish\",\"id\":\"d\",\"channel\":\"board:a\","
                              "\"message\":[[[[[[[[[[1]]]]]]]]]]}",
                              "{\"type\":\"subscribe\",\"id\":\"m\"}",
                              "{\"type\":\"lock\",\"id\":\"l\",\"lockName\":5}",
                              "{\"type\":\"ping\",\"id\":\"u\",\"extra\":\"\xc3\x28\"}",
                              "{\"type\":\"ping\",\"id\":\"dup\",\"id\":\"dup2\"}",
                              "{\"type\":\"publish\",\"id\":\"p\",\"channel\":\"board:a\"}"});
    }
  }

  std::ostringstream out_;
  testing::FakeClock clock_;
  TranscriptControl control_;
  core::TokenAllocator tokens_{0, [](std::uint64_t) { return std::optional<std::string>(); }};
  TranscriptHost host_;
  Services services_;
  Dispatcher dispatcher_;
  Choices choices_;
  std::unique_ptr<testing::FakePeer> peers_[kPeers];
  std::vector<std::string> pending_commands_[kPeers];
  std::deque<std::shared_ptr<core::CallObserver>> hanging_;
  std::size_t played_ = 0;
  std::uint64_t next_id_ = 1;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(GoldenTranscript, TheDispatcherAnswersTheRecordedBytes) {
  const std::string path = std::string(PHOTON_SOURCE_DIR) + "/tests/golden/dispatch_transcript.txt";
  const std::string actual = Transcript().run();
  if (const char* update = std::getenv("PHOTON_GOLDEN_UPDATE"); update && *update == '1') {
    std::ofstream(path, std::ios::binary) << actual;
    GTEST_SKIP() << "rewrote " << path;
  }
  std::ifstream file(path, std::ios::binary);
  ASSERT_TRUE(file) << path << " is missing (PHOTON_GOLDEN_UPDATE=1 records it)";
  const std::string expected((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
  if (actual == expected) return;
  const std::vector<std::string> want = lines_of(expected);
  const std::vector<std::string> got = lines_of(actual);
  for (std::size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
    const std::string a = i < want.size() ? want[i] : "(end)";
    const std::string b = i < got.size() ? got[i] : "(end)";
    if (a != b) {
      std::ofstream("dispatch_transcript.actual.txt", std::ios::binary) << actual;
      FAIL() << "first difference at line " << i + 1 << "\nexpected: " << a << "\nactual:   " << b
             << "\n(the whole actual transcript: dispatch_transcript.actual.txt in the test's "
                "working directory)";
    }
  }
  FAIL() << "the transcripts differ only in their final newline";
}

// Running it twice gives the same bytes: the transcript depends on nothing but its seed.
TEST(GoldenTranscript, IsDeterministic) { EXPECT_EQ(Transcript().run(), Transcript().run()); }

}  // namespace
}  // namespace photon::daemon
