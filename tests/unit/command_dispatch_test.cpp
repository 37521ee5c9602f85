// Unit tests of the `command`, `prompt_response` and `list_methods` handlers: a fake method host
// lets each test play the method's part (emit, prompt, finish) step by step.
#include "daemon/dispatcher.hpp"
#include "fake_clock.hpp"
#include "fake_method_host.hpp"
#include "fake_peer.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace photon::daemon {
namespace {

using boost::json::parse;
using testing::FakePeer;
using namespace std::chrono_literals;

class FakeHost : public testing::FakeMethodHost {
 public:
  FakeHost()
      : FakeMethodHost({{"moveTask", "Move a task", {{"taskId", "number", "The task", false}}},
                        {"ask", "Prompts", {}}}) {}
};

class NullControl final : public DaemonControl {
 public:
  void request_shutdown() override {}
  TransportCounters transport_counters() const override { return {}; }
  void wake_at(std::optional<std::chrono::steady_clock::time_point> when) override { wake = when; }
  std::optional<std::chrono::steady_clock::time_point> wake;
};

class CommandDispatchTest : public ::testing::Test {
 protected:
  CommandDispatchTest() {
    for (auto& peer : peers_) dispatcher_.on_open(peer);
  }
  ~CommandDispatchTest() override {
    for (auto& peer : peers_) {
      if (peer.context() != nullptr) dispatcher_.on_close(peer);
    }
  }
  static ServiceOptions options() {
    ServiceOptions result{"kanban"};
    result.prompt_timeout = 30s;
    result.max_commands_per_connection = 3;
    return result;
  }

  void send(std::size_t from, std::string_view line) { dispatcher_.on_line(peers_[from], line); }
  std::vector<boost::json::value> take(std::size_t peer) {
    std::vector<boost::json::value> parsed;
    for (const std::string& line : peers_[peer].take()) parsed.push_back(parse(line));
    return parsed;
  }
  // The one line peer `peer` received since the last look.
  boost::json::value one(std::size_t peer) {
    auto lines = take(peer);
    EXPECT_EQ(lines.size(), 1u);
    return lines.empty() ? boost::json::value() : lines[0];
  }
  // Captures the answer a prompt gets.
  core::PromptAnswer capture(std::optional<std::optional<boost::json::value>>& into) {
    return [&into](std::optional<boost::json::value> value) { into = std::move(value); };
  }

  testing::FakeClock clock_;
  NullControl control_;
  core::TokenAllocator tokens_{0, [](std::uint64_t) { return std::optional<std::string>(); }};
  FakeHost host_;
  Services services_{options(), clock_, tokens_, &host_};
  Dispatcher dispatcher_{{}, services_, control_};
  FakePeer peers_[3];
};

TEST_F(CommandDispatchTest, StartsTheMethodWithArgsSessionAndClientType) {
  send(
      0,
      R"({"type":"command","id":"c1","method":"moveTask","args":{"taskId":1},"sessionId":"s1","clientType":"mcp"})");
  send(0, R"({"type":"command","id":"c2","method":"moveTask"})");
  ASSERT_EQ(host_.calls.size(), 2u);
  EXPECT_EQ(host_.calls[0].request.method, "moveTask");
  EXPECT_EQ(host_.calls[0].request.args, parse(R"({"taskId":1})").as_object());
  EXPECT_EQ(host_.calls[0].request.session_id, "s1");
  EXPECT_EQ(host_.calls[0].request.client_type, "mcp");
  EXPECT_EQ(host_.calls[1].request.session_id, "default") << "no sessionId: the default session";
  EXPECT_TRUE(peers_[0].lines.empty()) << "no reply until the method ends";
  EXPECT_EQ(services_.calls().running(), 2u);
}

TEST_F(CommandDispatchTest, ArgumentsOutsideTheDeclaredParametersNeverReachTheMethod) {
  send(0, R"({"type":"command","id":"c1","method":"moveTask","args":{"taskId":"1"}})");
  send(0, R"({"type":"command","id":"c2","method":"moveTask","args":{"task":1}})");
  EXPECT_TRUE(host_.calls.empty());
  auto lines = take(0);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(
      lines[0],
      parse(
          R"J({"type":"error","id":"c1","error":"method \"moveTask\": parameter \"taskId\" must be a number, not a string; parameters: [taskId] (number)"})J"));
  EXPECT_EQ(
      lines[1],
      parse(
          R"J({"type":"error","id":"c2","error":"method \"moveTask\": unknown parameter \"task\"; parameters: [taskId] (number)"})J"));
  EXPECT_EQ(services_.calls().running(), 0u);
}

TEST_F(CommandDispatchTest, TheOutcomeIsTheReply) {
  send(0, R"({"type":"command","id":"c1","method":"moveTask"})");
  send(0, R"({"type":"command","id":"c2","method":"moveTask"})");
  host_.calls[1].observer->on_finish(
      core::CallOutcome::failure(core::CallStatus::kFailed, "no task 9"));
  host_.calls[0].observer->on_finish(core::CallOutcome::success(parse(R"({"success":true})")));
  auto lines = take(0);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], parse(R"({"type":"error","id":"c2","error":"no task 9"})"));
  EXPECT_EQ(lines[1],
            parse(R"({"type":"result","id":"c1","success":true,"data":{"success":true}})"));
  EXPECT_EQ(services_.calls().running(), 0u);
}

TEST_F(CommandDispatchTest, RefusalsAreErrors) {
  send(0, R"({"type":"command","id":"c1","method":"nope"})");
  EXPECT_EQ(
      one(0),
      parse(
          R"({"type":"error","id":"c1","error":"unknown method \"nope\"; available: moveTask, ask"})"));
  send(0, R"({"type":"command","id":"c2"})");
  EXPECT_EQ(one(0).at("error"), "\"method\" must be a non-empty string");
  send(0, R"({"type":"command","id":"c3","method":"ask","args":[1]})");
  EXPECT_EQ(one(0).at("error"), "\"args\" must be a JSON object");
  send(0, R"({"type":"command","id":"c4","method":"ask","clientType":7})");
  EXPECT_EQ(one(0).at("error"), "\"clientType\" must be a string of at most 64 bytes");
  EXPECT_TRUE(host_.calls.empty());

  send(0, R"({"type":"command","id":"dup","method":"ask"})");
  send(0, R"({"type":"command","id":"dup","method":"ask"})");
  EXPECT_NE(one(0).at("error").as_string().find("already running"), std::string::npos);
  send(0, R"({"type":"command","id":"d2","method":"ask"})");
  send(0, R"({"type":"command","id":"d3","method":"ask"})");
  send(0, R"({"type":"command","id":"d4","method":"ask"})");
  EXPECT_EQ(one(0).at("error"), "too many commands running on this connection (limit 3)");
  EXPECT_EQ(host_.calls.size(), 3u);
}

TEST_F(CommandDispatchTest, WithoutMethodsCommandIsRefusedAndListIsEmpty) {
  Services bare_services({"plain"}, clock_, tokens_);
  Dispatcher bare({}, bare_services, control_);
  FakePeer peer;
  bare.on_open(peer);
  bare.on_line(peer, R"({"type":"command","id":"c","method":"x"})");
  bare.on_line(peer, R"({"type":"list_methods","id":"l"})");
  ASSERT_EQ(peer.lines.size(), 2u);
  EXPECT_NE(parse(peer.lines[0]).at("error").as_string().find("has no methods"), std::string::npos);
  EXPECT_EQ(
      parse(peer.lines[1]),
      parse(R"({"type":"result","id":"l","success":true,"data":{"photon":"plain","methods":[]}})"));
  bare.on_close(peer);
}

TEST_F(CommandDispatchTest, ListMethodsDescribesEveryMethod) {
  send(1, R"({"type":"list_methods","id":"l"})");
  EXPECT_EQ(one(1),
            parse(R"({"type":"result","id":"l","success":true,"data":{"photon":"kanban","methods":[
    {"name":"moveTask","description":"Move a task","params":[{"name":"taskId","type":"number","description":"The task","required":false}]},
    {"name":"ask","description":"Prompts","params":[]}]}})"));
}

TEST_F(CommandDispatchTest, AChannelEmitReachesSubscribersButNotTheCaller) {
  send(0, R"({"type":"subscribe","id":"s","channel":"board:*"})");
  send(1, R"({"type":"subscribe","id":"s","channel":"board:*"})");
  send(2, R"({"type":"subscribe","id":"s","channel":"board:main"})");
  for (std::size_t i = 0; i < 3; ++i) take(i);
  send(0, R"({"type":"command","id":"c1","method":"moveTask"})");
  host_.calls[0].observer->on_emit(
      parse(R"({"channel":"board:main","event":"task-moved","data":{"taskId":1}})").as_object());
  EXPECT_TRUE(take(0).empty());
  for (std::size_t i : {1u, 2u}) {
    auto message = one(i);
    EXPECT_EQ(message.at("type"), "channel_message");
    EXPECT_EQ(message.at("channel"), "board:main");
    EXPECT_EQ(message.at("message"),
              parse(R"({"channel":"board:main","event":"task-moved","data":{"taskId":1}})"));
  }
}

TEST_F(CommandDispatchTest, AnEmitWithoutChannelIsProgressForTheCaller) {
  send(1, R"({"type":"subscribe","id":"s","channel":"*"})");
  take(1);
  send(0, R"({"type":"command","id":"c1","method":"moveTask"})");
  host_.calls[0].observer->on_emit(parse(R"({"percent":50})").as_object());
  EXPECT_EQ(one(0), parse(R"({"type":"emit","id":"c1","emitData":{"percent":50}})"));
  EXPECT_TRUE(take(1).empty());
}

TEST_F(CommandDispatchTest, AnEmitToAnInvalidChannelIsReportedToTheCaller) {
  send(1, R"({"type":"subscribe","id":"s","channel":"*"})");
  take(1);
  send(0, R"({"type":"command","id":"c1","method":"moveTask"})");
  host_.calls[0].observer->on_emit(parse(R"({"channel":"board:*","event":"x"})").as_object());
  auto line = one(0);
  EXPECT_EQ(line.at("type"), "emit");
  EXPECT_NE(line.at("emitData").at("error").as_string().find("emit not published"),
            std::string::npos);
  EXPECT_TRUE(take(1).empty());
}

TEST_F(CommandDispatchTest, ConcurrentCommandsEachGetTheirOwnPrompt) {
  std::optional<std::optional<boost::json::value>> first, second;
  send(0, R"({"type":"command","id":"c1","method":"ask"})");
  send(0, R"({"type":"command","id":"c2","method":"ask"})");
  host_.calls[0].observer->on_prompt(parse(R"({"type":"text","message":"One?"})").as_object(),
                                     capture(first));
  host_.calls[1].observer->on_prompt(parse(R"({"type":"confirm","message":"Two?"})").as_object(),
                                     capture(second));
  auto lines = take(0);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            parse(R"({"type":"prompt","id":"c1","prompt":{"type":"text","message":"One?"}})"));
  EXPECT_EQ(lines[1],
            parse(R"({"type":"prompt","id":"c2","prompt":{"type":"confirm","message":"Two?"}})"));

  send(0, R"({"type":"prompt_response","id":"c2","promptValue":true})");
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, boost::json::value(true));
  EXPECT_FALSE(first);
  send(0, R"({"type":"prompt_response","id":"c1","promptValue":"Ada"})");
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, boost::json::value("Ada"));
  EXPECT_TRUE(take(0).empty()) << "an answer gets no reply line";
}

TEST_F(CommandDispatchTest, NullDeclinesAndStrayAnswersAreErrors) {
  std::optional<std::optional<boost::json::value>> answer;
  send(0, R"({"type":"command","id":"c1","method":"ask"})");
  host_.calls[0].observer->on_prompt(parse(R"({"type":"text","message":"?"})").as_object(),
                                     capture(answer));
  take(0);
  send(0, R"({"type":"prompt_response","id":"c1","promptValue":null})");
  ASSERT_TRUE(answer);
  EXPECT_FALSE(*answer) << "null declines: the method gets nothing";

  send(0, R"({"type":"prompt_response","id":"c1","promptValue":1})");
  EXPECT_TRUE(take(0).empty()) << "no prompt waiting on a running command: dropped silently";
  send(0, R"({"type":"prompt_response","id":"nope","promptValue":1})");
  EXPECT_EQ(one(0).at("error"), "no command with id \"nope\" is running on this connection");
  send(1, R"({"type":"prompt_response","id":"c1","promptValue":1})");
  EXPECT_EQ(one(1).at("type"), "error") << "another connection cannot answer c1";
  send(0, R"({"type":"prompt_response","id":"c1"})");
  EXPECT_EQ(one(0).at("error"), "prompt_response requires \"promptValue\" (null declines)");
}

TEST_F(CommandDispatchTest, AnUnansweredPromptTimesOut) {
  std::optional<std::optional<boost::json::value>> answer;
  send(0, R"({"type":"command","id":"c1","method":"ask"})");
  host_.calls[0].observer->on_prompt(parse(R"({"type":"text","message":"?"})").as_object(),
                                     capture(answer));
  ASSERT_TRUE(control_.wake);
  EXPECT_EQ(*control_.wake, clock_.steady() + 30s);
  clock_.advance(30s - 1ms);
  dispatcher_.on_timer();
  EXPECT_FALSE(answer);
  clock_.advance(1ms);
  dispatcher_.on_timer();
  ASSERT_TRUE(answer);
  EXPECT_FALSE(*answer);
  EXPECT_FALSE(control_.wake) << "nothing left to wake for";
}

TEST_F(CommandDispatchTest, ACallerThatLeavesLeavesTheMethodWithoutAnswer) {
  std::optional<std::optional<boost::json::value>> answer, later;
  send(1, R"({"type":"subscribe","id":"s","channel":"board:*"})");
  take(1);
  send(0, R"({"type":"command","id":"c1","method":"ask"})");
  host_.calls[0].observer->on_prompt(parse(R"({"type":"text","message":"?"})").as_object(),
                                     capture(answer));
  dispatcher_.on_close(peers_[0]);
  ASSERT_TRUE(answer);
  EXPECT_FALSE(*answer);
  take(0);
  // The method runs on: further prompts get nothing at once, channel emits still publish, and
  // its end goes nowhere.
  host_.calls[0].observer->on_prompt(parse(R"({"type":"text","message":"again?"})").as_object(),
                                     capture(later));
  ASSERT_TRUE(later);
  EXPECT_FALSE(*later);
  host_.calls[0].observer->on_emit(parse(R"({"channel":"board:a","event":"x"})").as_object());
  EXPECT_EQ(one(1).at("type"), "channel_message");
  host_.calls[0].observer->on_finish(core::CallOutcome::success(1));
  EXPECT_TRUE(peers_[0].lines.empty());
  EXPECT_EQ(services_.calls().running(), 0u);
}

TEST_F(CommandDispatchTest, AMethodEndingWithAPromptOpenClosesIt) {
  std::optional<std::optional<boost::json::value>> answer;
  send(0, R"({"type":"command","id":"c1","method":"ask"})");
  host_.calls[0].observer->on_prompt(parse(R"({"type":"text","message":"?"})").as_object(),
                                     capture(answer));
  host_.calls[0].observer->on_finish(core::CallOutcome::success(nullptr));
  ASSERT_TRUE(answer);
  EXPECT_FALSE(control_.wake);
  auto lines = take(0);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], parse(R"({"type":"result","id":"c1","success":true,"data":null})"));
}

// A handler that throws (here the method host; in the field, out of memory) answers the request
// with an error for its id and reports the type and size to the transport, which logs it and
// keeps the connection; the next request is served as usual.
TEST_F(CommandDispatchTest, AThrowingHandlerAnswersAnErrorAndNamesTheRequest) {
  class ThrowingHost final : public testing::FakeMethodHost {
   public:
    ThrowingHost() : FakeMethodHost(std::vector<core::MethodInfo>{{"boom", "Throws", {}}}) {}
    void start(core::CallRequest, std::shared_ptr<core::CallObserver>) override {
      throw std::bad_alloc();
    }
  } host;
  Services services(options(), clock_, tokens_, &host);
  Dispatcher dispatcher({}, services, control_);
  FakePeer peer;
  dispatcher.on_open(peer);
  const std::string line = R"({"type":"command","id":"c9","method":"boom"})";
  try {
    dispatcher.on_line(peer, line);
    ADD_FAILURE() << "expected net::RequestFailed";
  } catch (const net::RequestFailed& failure) {
    EXPECT_EQ(std::string(failure.what()), "serving a command request of " +
                                               std::to_string(line.size()) +
                                               " bytes failed: std::bad_alloc");
  }
  auto replies = peer.take();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(
      parse(replies[0]),
      parse(
          R"({"type":"error","id":"c9","error":"internal error while serving this request (the daemon's log says more); the connection stays open"})"));
  dispatcher.on_line(peer, R"({"type":"ping","id":"p"})");
  replies = peer.take();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(parse(replies[0]), parse(R"({"type":"pong","id":"p"})"));
  dispatcher.on_close(peer);
}

}  // namespace
}  // namespace photon::daemon
