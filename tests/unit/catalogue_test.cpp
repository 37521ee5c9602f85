// Unit tests of the catalogue of client-visible sentences: every refusal code has one sentence, the
// values fill it in order, and a refusal a service returns reaches the client as that sentence.
#include "daemon/dispatcher.hpp"
#include "daemon/services.hpp"
#include "fake_clock.hpp"
#include "fake_peer.hpp"
#include "protocol/error_messages.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <set>

namespace photon {
namespace {

using boost::json::parse;

constexpr std::size_t kCodes = static_cast<std::size_t>(RefusalCode::kCount);

TEST(Catalogue, EveryRefusalCodeHasItsOwnSentence) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < kCodes; ++i) {
    const std::string_view sentence = protocol::sentence_of(static_cast<RefusalCode>(i));
    EXPECT_FALSE(sentence.empty()) << "code " << i;
    EXPECT_TRUE(seen.insert(sentence).second) << "code " << i << " repeats: " << sentence;
    // A sentence is lower case (it follows "error: " in photonctl) and has no trailing period.
    EXPECT_FALSE(sentence.back() == '.') << sentence;
  }
}

TEST(Catalogue, ValuesFillTheSentenceInOrder) {
  EXPECT_EQ(protocol::describe({RefusalCode::kMethodAtMaxConcurrent, {"sync", "2", "2"}}),
            "method sync is already running 2 times (max_concurrent 2)");
  EXPECT_EQ(protocol::describe({RefusalCode::kTooManyLocks, {"10"}}),
            "too many locks held (limit 10)");
  EXPECT_EQ(protocol::describe({RefusalCode::kShuttingDown, {}}), "the daemon is shutting down");
  // Every '%' of every sentence is a value: given enough values, none is left.
  for (std::size_t i = 0; i < kCodes; ++i) {
    const std::string text = protocol::describe({static_cast<RefusalCode>(i), {"v", "v", "v"}});
    EXPECT_EQ(text.find('%'), std::string::npos) << text;
  }
  // A value that holds a '%' is not filled again.
  EXPECT_EQ(protocol::fill_message("a % b %", {"%", "x"}), "a % b x");
}

class RecordingControl final : public daemon::DaemonControl {
 public:
  void request_shutdown() override {}
  daemon::TransportCounters transport_counters() const override { return {0, 0}; }
  void wake_at(std::optional<std::chrono::steady_clock::time_point>) override {}
};

// Representative requests: the lock table, the channel registry, the scheduler and the dispatcher
// refuse with codes, and the client reads the catalogue's sentence with the code's values.
class RefusalReachesTheClient : public ::testing::Test {
 protected:
  static daemon::ServiceOptions options() {
    daemon::ServiceOptions result{.photon_name = "kanban", .max_subscriptions = 1};
    result.lock_limits.max_locks = 1;
    return result;
  }

  RefusalReachesTheClient() { dispatcher_.on_open(peer_); }
  ~RefusalReachesTheClient() override { dispatcher_.on_close(peer_); }

  boost::json::object request(std::string_view line) {
    dispatcher_.on_line(peer_, line);
    std::vector<std::string> replies = peer_.take();
    EXPECT_EQ(replies.size(), 1u) << line;
    if (replies.empty()) return {};
    return parse(replies[0]).as_object();
  }

  testing::FakeClock clock_;
  RecordingControl control_;
  bool disk_full_ = false;
  core::TokenAllocator tokens_{0,
                               [this](std::uint64_t) {
                                 return disk_full_ ? std::optional<std::string>("disk full")
                                                   : std::nullopt;
                               },
                               1};
  daemon::Services services_{options(), clock_, tokens_};
  daemon::Dispatcher dispatcher_{{}, services_, control_};
  testing::FakePeer peer_;
};

TEST_F(RefusalReachesTheClient, SubscriptionLimit) {
  EXPECT_EQ(request(R"({"type":"subscribe","id":"a","channel":"a"})").at("success"), true);
  EXPECT_EQ(
      request(R"({"type":"subscribe","id":"b","channel":"b"})"),
      parse(
          R"j({"type":"error","id":"b","error":"too many subscriptions on this connection (limit 1)"})j"));
}

TEST_F(RefusalReachesTheClient, LockLimitAndTokenNotIssued) {
  disk_full_ = true;
  EXPECT_EQ(
      request(R"({"type":"lock","id":"t","lockName":"x"})"),
      parse(R"({"type":"error","id":"t","error":"cannot issue a fencing token: disk full"})"));
  disk_full_ = false;
  EXPECT_EQ(request(R"({"type":"lock","id":"a","lockName":"x"})").at("success"), true);
  const std::string expected = protocol::describe({RefusalCode::kTooManyLocks, {"1"}});
  EXPECT_EQ(expected, "too many locks held (limit 1)");
  EXPECT_EQ(request(R"({"type":"lock","id":"b","lockName":"y"})"),
            (boost::json::object{{"type", "error"}, {"id", "b"}, {"error", expected}}));
}

TEST_F(RefusalReachesTheClient, UnknownJobAndNoCommandAndNoMethods) {
  EXPECT_EQ(request(R"({"type":"job_history","id":"h","jobId":"ghost"})"),
            parse(R"({"type":"error","id":"h","error":"no job \"ghost\""})"));
  EXPECT_EQ(
      request(R"({"type":"prompt_response","id":"p","promptValue":1})"),
      parse(
          R"({"type":"error","id":"p","error":"no command with id \"p\" is running on this connection"})"));
  EXPECT_EQ(
      request(R"({"type":"command","id":"c","method":"m"})"),
      parse(
          R"j({"type":"error","id":"c","error":"photon \"kanban\" has no methods (serve a manifest with --manifest, or a C++ photon)"})j"));
}

}  // namespace
}  // namespace photon
