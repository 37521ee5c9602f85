// Unit tests of the dispatch table and handlers, driven through in-memory peers and a fake clock.
#include "daemon/dispatcher.hpp"
#include "fake_clock.hpp"
#include "fake_peer.hpp"
#include "request_mix.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <set>

namespace photon::daemon {
namespace {

using boost::json::parse;
using testing::FakePeer;

class RecordingControl final : public DaemonControl {
 public:
  void request_shutdown() override { ++shutdowns; }
  TransportCounters transport_counters() const override { return {3, 4, 5}; }
  void wake_at(std::optional<std::chrono::steady_clock::time_point> when) override { wake = when; }
  int shutdowns = 0;
  std::optional<std::chrono::steady_clock::time_point> wake;
};

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() {
    for (auto& peer : peers_) dispatcher_.on_open(peer);
  }
  ~DispatcherTest() override {
    for (auto& peer : peers_) dispatcher_.on_close(peer);
  }

  // Sends `line` from peer `from` and returns the single reply, parsed.
  boost::json::object request(std::size_t from, std::string_view line) {
    dispatcher_.on_line(peers_[from], line);
    std::vector<std::string> replies = peers_[from].take();
    EXPECT_EQ(replies.size(), 1u) << line;
    if (replies.empty()) return {};
    EXPECT_EQ(replies[0].back(), '\n');
    return parse(replies[0]).as_object();
  }

  testing::FakeClock clock_;
  RecordingControl control_;
  core::TokenAllocator tokens_{0, [](std::uint64_t) { return std::optional<std::string>(); }};
  Services services_{{.photon_name = "kanban", .max_subscriptions = 3}, clock_, tokens_};
  Dispatcher dispatcher_{{.max_json_depth = 16}, services_, control_};
  FakePeer peers_[3];
};

// The lines the transport sends when it refuses a client are the protocol's error lines.
TEST_F(DispatcherTest, WordsTheTransportsRefusals) {
  EXPECT_EQ(
      dispatcher_.refusal_line(net::TransportRefusal::kLineTooLong, 1024),
      R"({"type":"error","id":"unknown","error":"line exceeds 1024 bytes; closing the connection"})"
      "\n");
  EXPECT_EQ(
      dispatcher_.refusal_line(net::TransportRefusal::kBinaryMessage, 0),
      R"({"type":"error","id":"unknown","error":"binary messages are not accepted: send each request as one text message"})"
      "\n");
  EXPECT_EQ(
      dispatcher_.refusal_line(net::TransportRefusal::kPermissionDenied, 1001),
      R"({"type":"error","id":"unknown","error":"permission denied: uid 1001 is not the daemon's owner"})"
      "\n");
}

TEST_F(DispatcherTest, PingPongs) {
  EXPECT_EQ(request(0, R"({"type":"ping","id":"p1"})"), parse(R"({"type":"pong","id":"p1"})"));
}

TEST_F(DispatcherTest, SubscribeUnsubscribeRepliesAsTheSpec) {
  EXPECT_EQ(
      request(0, R"({"type":"subscribe","id":"s","channel":"board:a"})"),
      parse(
          R"({"type":"result","id":"s","success":true,"data":{"subscribed":true,"channel":"board:a"}})"));
  EXPECT_EQ(
      request(0, R"({"type":"unsubscribe","id":"u","channel":"board:a"})"),
      parse(
          R"({"type":"result","id":"u","success":true,"data":{"unsubscribed":true,"channel":"board:a"}})"));
}

TEST_F(DispatcherTest, PublishFansOutToOthersOnly) {
  request(0, R"({"type":"subscribe","id":"s","channel":"board:*"})");
  request(1, R"({"type":"subscribe","id":"s","channel":"board:a"})");
  request(2, R"({"type":"subscribe","id":"s","channel":"board:a"})");
  auto reply =
      request(2, R"({"type":"publish","id":"m","channel":"board:a","message":{"event":"x"}})");
  // The event id the publisher is told is the one its subscribers receive.
  const boost::json::value event_id = reply.at("data").at("eventId");
  ASSERT_TRUE(event_id.is_string());
  EXPECT_EQ(reply.at("data"),
            parse(R"({"published":true,"channel":"board:a","delivered":2,"eventId":)" +
                  boost::json::serialize(event_id) + "}"));
  EXPECT_TRUE(peers_[2].lines.empty());
  for (std::size_t i : {0u, 1u}) {
    auto lines = peers_[i].take();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(parse(lines[0]),
              parse(R"({"type":"channel_message","id":"ch_1","channel":"board:a","eventId":)" +
                    boost::json::serialize(event_id) + R"(,"message":{"event":"x"}})"));
  }
}

TEST_F(DispatcherTest, MessageIdsAreUniqueAndOrdered) {
  request(0, R"({"type":"subscribe","id":"s","channel":"c"})");
  for (int i = 0; i < 3; ++i)
    request(1, R"({"type":"publish","id":"m","channel":"c","message":1})");
  auto lines = peers_[0].take();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(parse(lines[0]).at("id"), "ch_1");
  EXPECT_EQ(parse(lines[2]).at("id"), "ch_3");
}

TEST_F(DispatcherTest, ClosedPeerStopsReceiving) {
  request(0, R"({"type":"subscribe","id":"s","channel":"c"})");
  dispatcher_.on_close(peers_[0]);
  auto reply = request(1, R"({"type":"publish","id":"m","channel":"c","message":1})");
  EXPECT_EQ(reply.at("data").at("delivered"), 0);
  dispatcher_.on_open(peers_[0]);  // reopened for the fixture's teardown
}

TEST_F(DispatcherTest, ErrorsNameTheProblemAndEchoTheId) {
  EXPECT_EQ(request(0, R"({"type":"publish","id":"m","channel":"c"})"),
            parse(R"({"type":"error","id":"m","error":"publish requires \"message\""})"));
  EXPECT_EQ(request(0, R"({"type":"subscribe","id":7,"channel":"c"})").at("id"), "unknown");
  EXPECT_EQ(request(0, "{not json").at("type"), "error");
  EXPECT_EQ(
      request(0, R"({"type":"schedule","id":"l","jobId":"x","method":"m"})"),
      parse(
          R"({"type":"error","id":"l","error":"\"cron\" must be a non-empty string of at most 256 bytes"})"));
}

TEST_F(DispatcherTest, SubscriptionLimitIsPerConnection) {
  for (auto channel : {"a", "b", "c"}) {
    request(0, std::string(R"({"type":"subscribe","id":"s","channel":")") + channel + "\"}");
  }
  EXPECT_EQ(
      request(0, R"({"type":"subscribe","id":"s","channel":"d"})"),
      parse(
          R"j({"type":"error","id":"s","error":"too many subscriptions on this connection (limit 3)"})j"));
  EXPECT_EQ(request(0, R"({"type":"subscribe","id":"s","channel":"a"})").at("success"), true);
  EXPECT_EQ(request(1, R"({"type":"subscribe","id":"s","channel":"d"})").at("success"), true);
}

TEST_F(DispatcherTest, StatusReportsUptimeOnTheInjectedClock) {
  request(0, R"({"type":"subscribe","id":"s","channel":"board:*"})");
  request(1, R"({"type":"subscribe","id":"s","channel":"board:*"})");
  request(2, R"({"type":"publish","id":"m","channel":"board:x","message":null})");
  clock_.advance(std::chrono::milliseconds(1500));
  auto data = request(2, R"({"type":"status","id":"st"})").at("data").as_object();
  EXPECT_EQ(data.at("name"), "kanban");
  EXPECT_EQ(data.at("uptimeMs"), 1500);
  EXPECT_EQ(data.at("connections"), 3);
  EXPECT_EQ(data.at("locks"), 0);
  EXPECT_EQ(data.at("channels"), parse(R"([{"channel":"board:*","subscribers":2,"messages":1}])"));
  EXPECT_EQ(data.at("channelCount"), 1);
  EXPECT_EQ(
      data.at("counters"),
      parse(
          R"({"published":1,"delivered":2,"droppedSlowConsumers":3,"connectionsRefused":4,"acceptPauses":5})"));
}

TEST_F(DispatcherTest, ShutdownRepliesBeforeAskingTheDaemonToStop) {
  EXPECT_EQ(
      request(0, R"({"type":"shutdown","id":"x"})"),
      parse(R"({"type":"result","id":"x","success":true,"data":{"message":"Shutting down"}})"));
  EXPECT_EQ(control_.shutdowns, 1);
}

TEST_F(DispatcherTest, LockHolderIsTheSessionElseTheId) {
  auto by_session =
      request(0, R"({"type":"lock","id":"l1","sessionId":"cli-1-ab","lockName":"a"})");
  EXPECT_EQ(by_session.at("data").at("holder"), "cli-1-ab");
  EXPECT_EQ(by_session.at("data").at("expiresAt").as_int64() -
                by_session.at("data").at("acquiredAt").as_int64(),
            30'000);
  auto by_id = request(0, R"({"type":"lock","id":"l2","lockName":"b","lockTimeout":5000})");
  EXPECT_EQ(by_id.at("data").at("holder"), "l2");
  auto refused = request(1, R"({"type":"lock","id":"l3","sessionId":"other","lockName":"a"})");
  EXPECT_EQ(refused.at("success"), false);
  EXPECT_EQ(refused.at("data"),
            parse(R"({"acquired":false,"lockName":"a","holder":"cli-1-ab","expiresAt":)" +
                  std::to_string(by_session.at("data").at("expiresAt").as_int64()) +
                  R"(,"reason":"lock \"a\" is held by cli-1-ab"})"));
}

TEST_F(DispatcherTest, WaitingLockIsAnsweredWhenTheTimerGrantsIt) {
  request(0, R"({"type":"lock","id":"l1","sessionId":"A","lockName":"a","lockTimeout":300})");
  ASSERT_TRUE(control_.wake);
  EXPECT_EQ(*control_.wake, clock_.steady() + std::chrono::milliseconds(300));
  dispatcher_.on_line(peers_[1],
                      R"({"type":"lock","id":"w","sessionId":"B","lockName":"a","lockWait":1000})");
  EXPECT_TRUE(peers_[1].take().empty());  // queued: no reply yet
  clock_.advance(std::chrono::milliseconds(300));
  dispatcher_.on_timer();
  auto lines = peers_[1].take();
  ASSERT_EQ(lines.size(), 1u);
  auto granted = parse(lines[0]).as_object();
  EXPECT_EQ(granted.at("id"), "w");
  EXPECT_EQ(granted.at("data").at("holder"), "B");
  EXPECT_EQ(granted.at("data").at("token"), 2);
}

TEST_F(DispatcherTest, ClosingAWaitersConnectionDropsItsWait) {
  request(0, R"({"type":"lock","id":"l1","sessionId":"A","lockName":"a"})");
  dispatcher_.on_line(peers_[1],
                      R"({"type":"lock","id":"w","sessionId":"B","lockName":"a","lockWait":1000})");
  dispatcher_.on_close(peers_[1]);
  request(0, R"({"type":"unlock","id":"u","sessionId":"A","lockName":"a"})");
  EXPECT_TRUE(peers_[1].lines.empty());
  EXPECT_EQ(request(0, R"({"type":"query_lock","id":"q","lockName":"a"})").at("data"),
            parse(R"({"lock":null})"));
  dispatcher_.on_open(peers_[1]);  // reopened for the fixture's teardown
}

TEST_F(DispatcherTest, LockFieldErrorsNameTheField) {
  EXPECT_EQ(
      request(0, R"({"type":"lock","id":"l","lockName":"a","lockTimeout":0})"),
      parse(
          R"j({"type":"error","id":"l","error":"\"lockTimeout\" must be an integer from 1 to 604800000 (milliseconds)"})j"));
  EXPECT_EQ(request(0, R"({"type":"lock","id":"l","lockName":"a","lockTimeout":3e4})")
                .at("data")
                .at("acquired"),
            true);
  EXPECT_EQ(
      request(0, R"({"type":"unlock","id":"u"})"),
      parse(R"({"type":"error","id":"u","error":"\"lockName\" must be a non-empty string"})"));
  EXPECT_EQ(
      request(0, R"({"type":"lock","id":"l","lockName":"b","releaseOnDisconnect":1})"),
      parse(
          R"({"type":"error","id":"l","error":"\"releaseOnDisconnect\" must be true or false"})"));
}

// 10,000 requests of random sizes (0 B to 1 MiB of payload) and types on one connection: each is
// answered, in order, for its id, and a subscriber receives every publish whole.
TEST_F(DispatcherTest, TenThousandRequestsOfAnySizeOnOneConnection) {
  request(0, R"({"type":"subscribe","id":"s","channel":"mix:*"})");
  testing::RequestMix mix(7);
  std::size_t published = 0;
  for (int i = 0; i < 10000; ++i) {
    const testing::MixedRequest sent = mix.next();
    dispatcher_.on_line(peers_[1], sent.line);
    std::vector<std::string> replies = peers_[1].take();
    ASSERT_EQ(replies.size(), 1u) << "request " << i << " (" << sent.type << ", "
                                  << sent.line.size() << " bytes)";
    const boost::json::object reply = parse(replies[0]).as_object();
    ASSERT_EQ(reply.at("id"), sent.id.c_str());
    ASSERT_NE(reply.at("type"), "error") << replies[0];
    if (sent.type != "publish") continue;
    ++published;
    std::vector<std::string> delivered = peers_[0].take();
    ASSERT_EQ(delivered.size(), 1u) << "request " << i;
    ASSERT_GT(delivered[0].size(), sent.payload_bytes);
    if (i % 97 == 0) {
      const boost::json::value sent_message = parse(sent.line).at("message");
      ASSERT_EQ(parse(delivered[0]).at("message"), sent_message);
    }
  }
  EXPECT_GT(published, 5000u);
}

// A subscriber that comes back with the last event id it saw gets, after the subscribe's answer,
// what it missed on the pattern's channels in publish order, marked as replays; then live ones.
TEST_F(DispatcherTest, ASubscriberComingBackGetsWhatItMissedThenLiveMessages) {
  request(0, R"({"type":"subscribe","id":"s","channel":"board:a"})");
  const std::string seen =
      request(1, R"({"type":"publish","id":"p","channel":"board:a","message":0})")
          .at("data")
          .at("eventId")
          .as_string()
          .c_str();
  peers_[0].take();
  for (const char* channel : {"board:a", "other", "board:b"}) {
    request(1, std::string(R"({"type":"publish","id":"p","channel":")") + channel +
                   R"(","message":1})");
  }
  dispatcher_.on_line(
      peers_[2],
      R"({"type":"subscribe","id":"r","channel":"board:*","lastEventId":")" + seen + "\"}");
  std::vector<std::string> replayed = peers_[2].take();
  ASSERT_EQ(replayed.size(), 3u);
  EXPECT_EQ(
      parse(replayed[0]),
      parse(
          R"({"type":"result","id":"r","success":true,"data":{"subscribed":true,"channel":"board:*"}})"));
  replayed.erase(replayed.begin());
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(parse(replayed[0]).at("channel"), "board:a");
  EXPECT_EQ(parse(replayed[1]).at("channel"), "board:b");
  for (const std::string& line : replayed) EXPECT_EQ(parse(line).at("replay"), true);
  request(1, R"({"type":"publish","id":"p","channel":"board:c","message":2})");
  std::vector<std::string> live = peers_[2].take();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_FALSE(parse(live[0]).as_object().contains("replay"));
}

// An id this daemon cannot vouch for gets refresh_needed (then live messages); a lastEventId that
// is not a string is refused before anything is subscribed.
TEST_F(DispatcherTest, AnIdFromElsewhereGetsRefreshNeededAndANonStringIsRefused) {
  request(1, R"({"type":"publish","id":"p","channel":"c","message":1})");
  for (const char* id : {"000000000000-1", "nonsense", ""}) {
    dispatcher_.on_line(
        peers_[0],
        std::string(R"({"type":"subscribe","id":"r","channel":"c","lastEventId":")") + id + "\"}");
    const std::vector<std::string> lines = peers_[0].take();
    ASSERT_EQ(lines.size(), 2u) << id;
    EXPECT_EQ(parse(lines[0]).at("type"), "result") << id;
    EXPECT_EQ(lines[1], R"({"type":"refresh_needed","id":"r","channel":"c"})"
                        "\n")
        << id;
  }
  EXPECT_EQ(
      request(2, R"({"type":"subscribe","id":"n","channel":"c","lastEventId":7})"),
      parse(
          R"({"type":"error","id":"n","error":"\"lastEventId\" must be a string of at most 256 bytes"})"));
  request(1, R"({"type":"publish","id":"p","channel":"c","message":2})");
  EXPECT_TRUE(peers_[2].take().empty());
}

// get_events_since answers from the same window, oldest first, at most `limit`.
TEST_F(DispatcherTest, GetEventsSinceReadsTheWindowInPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.emplace_back(request(1, R"({"type":"publish","id":"p","channel":"c","message":)" +
                                    std::to_string(i) + "}")
                         .at("data")
                         .at("eventId")
                         .as_string()
                         .c_str());
  }
  const auto page =
      request(0, R"({"type":"get_events_since","id":"g","channel":"c","lastEventId":")" + ids[1] +
                     R"(","limit":2})");
  EXPECT_EQ(page.at("data"), parse(R"({"events":[{"eventId":")" + ids[2] +
                                   R"(","channel":"c","message":2},{"eventId":")" + ids[3] +
                                   R"(","channel":"c","message":3}],"refreshNeeded":false})"));
  EXPECT_EQ(request(0, R"({"type":"get_events_since","id":"g","channel":"c","lastEventId":"x-1"})")
                .at("data")
                .at("refreshNeeded"),
            true);
  // The same event spelled with a leading zero is not one of this daemon's ids.
  std::string padded = ids[1];
  padded.insert(padded.rfind('-') + 1, "0");
  EXPECT_EQ(request(0, R"({"type":"get_events_since","id":"g","channel":"c","lastEventId":")" +
                           padded + "\"}")
                .at("data")
                .at("refreshNeeded"),
            true);
}

// The table is the index of the protocol: every type of the spec and of our extensions, once.
TEST_F(DispatcherTest, TheTableNamesEveryRequestTypeOnce) {
  const auto types = Dispatcher::request_types();
  const std::set<std::string_view> unique(types.begin(), types.end());
  EXPECT_EQ(unique.size(), types.size());
  EXPECT_EQ(unique, (std::set<std::string_view>{
                        "ping", "shutdown", "status", "subscribe", "unsubscribe", "publish",
                        "command", "prompt_response", "lock", "unlock", "list_locks", "schedule",
                        "unschedule", "list_jobs", "query_lock", "list_methods", "job_history",
                        "run_job", "get_events_since"}));
}

TEST_F(DispatcherTest, AnUnknownTypeIsNamedWithTheRequestsId) {
  EXPECT_EQ(request(0, R"({"type":"lokc","id":"q"})"),
            parse(R"({"type":"error","id":"q","error":"unknown request type \"lokc\""})"));
  // The id's and sessionId's rules come first, as for every type.
  EXPECT_EQ(request(0, R"({"type":"lokc","id":"q","sessionId":5})").at("error"),
            "\"sessionId\" must be a string");
}

// status.locks counts the locks held now (the idle timeout waits for none).
TEST_F(DispatcherTest, StatusCountsHeldLocks) {
  request(0, R"({"type":"lock","id":"l1","lockName":"a","sessionId":"s"})");
  request(0, R"({"type":"lock","id":"l2","lockName":"b","sessionId":"s"})");
  EXPECT_EQ(request(1, R"({"type":"status","id":"s"})").at("data").at("locks"), 2);
  EXPECT_EQ(request(0, R"({"type":"unlock","id":"u","lockName":"a","sessionId":"s"})")
                .at("data")
                .at("released"),
            true);
  EXPECT_EQ(request(1, R"({"type":"status","id":"s"})").at("data").at("locks"), 1);
}

}  // namespace
}  // namespace photon::daemon
