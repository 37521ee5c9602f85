// Client::call and Client::list_methods against the real photond serving an exec photon: a manifest
// of small shell and Python methods written into the test's own $PHOTON_DIR.
#include "photon/client.hpp"

#include "daemon_fixture.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using photon::CallOptions;
using photon::Client;
using photon::ClientError;
using photon::PromptRequest;

// The photon under test. `ask` asks each prompt of its args in turn and returns the answers;
// `progress` emits {"step": i} for each step before its result.
constexpr const char* kManifest = R"toml(
description = "methods for call_client_test"

[methods.echo]
description = "Returns its args"
command = "cat"

[[methods.echo.params]]
name = "x"
type = "number"
description = "Any number"

[[methods.echo.params]]
name = "note"
type = "string"
required = false

[methods.session]
description = "Returns the caller's session"
command = '''printf '"%s"' "$PHOTON_SESSION_ID"'''

[methods.progress]
command = "python3 progress.py"

[methods.ask]
command = "python3 ask.py"
interactive = true

[methods.fail]
command = '''echo '{"error":"the board is locked"}' '''

[methods.crash]
command = "echo oops >&2; exit 3"

[methods.slow]
command = '''sleep 0.6; echo '"late"' '''

[methods.stuck]
command = "sleep 10"
timeout = "300ms"
)toml";

constexpr const char* kProgressScript = R"py(
import json, sys
args = json.loads(sys.stdin.readline())
for i in range(args.get("steps", 3)):
    print(json.dumps({"emit": {"step": i}}), flush=True)
print(json.dumps({"result": {"done": True}}), flush=True)
)py";

constexpr const char* kAskScript = R"py(
import json, sys
args = json.loads(sys.stdin.readline())
answers = []
for prompt in args.get("prompts", []):
    print(json.dumps({"prompt": prompt}), flush=True)
    answers.append(json.loads(sys.stdin.readline()))
print(json.dumps({"result": answers}), flush=True)
)py";

class Calls : public photon::testing::DaemonFixture {
 protected:
  // The daemon serves an exec photon: a manifest and its scripts in its PHOTON_DIR.
  std::vector<std::string> serve_args(const std::filesystem::path& dir) override {
    write(dir / "photon.toml", kManifest);
    write(dir / "progress.py", kProgressScript);
    write(dir / "ask.py", kAskScript);
    return {"--manifest", (dir / "photon.toml").string()};
  }

  static void write(const std::filesystem::path& file, const char* text) {
    std::ofstream(file) << text;
  }

  // The args of `ask`: these prompts, asked in order.
  static boost::json::object prompts(boost::json::array list) {
    return {{"prompts", std::move(list)}};
  }
};

TEST_F(Calls, ReturnsTheResult) {
  Client client = Client::connect(kName);
  const boost::json::object args{{"x", 1}, {"note", "a"}};
  EXPECT_EQ(client.call("echo", args), args);
  // A method that declares no parameters takes any arguments.
  EXPECT_NO_THROW(client.call("session", {{"anything", {true, nullptr}}}));
}

// The daemon checks the arguments against the declared parameters before the method runs.
TEST_F(Calls, ArgumentsOutsideTheDeclaredParametersAreRefused) {
  Client client = Client::connect(kName);
  try {
    client.call("echo", {{"x", 1}, {"list", {true, nullptr}}});
    FAIL() << "an undeclared parameter was accepted";
  } catch (const ClientError& error) {
    EXPECT_STREQ(error.what(),
                 "method \"echo\": unknown parameter \"list\"; parameters: x (number), [note] "
                 "(string)");
  }
  try {
    client.call("echo");
    FAIL() << "a missing required parameter was accepted";
  } catch (const ClientError& error) {
    EXPECT_NE(std::string(error.what()).find("missing required parameter \"x\""), std::string::npos)
        << error.what();
  }
}

TEST_F(Calls, RunInTheClientsSession) {
  Client client = Client::connect(kName, {.session_id = "board-7"});
  EXPECT_EQ(client.call("session"), "board-7");
}

TEST_F(Calls, EmitsReachOnEmitInOrder) {
  Client client = Client::connect(kName);
  std::vector<boost::json::object> events;
  const boost::json::value result =
      client.call("progress", {{"steps", 5}},
                  {.on_emit = [&](const boost::json::object& event) { events.push_back(event); }});
  EXPECT_EQ(result, (boost::json::object{{"done", true}}));
  ASSERT_EQ(events.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(events[i], (boost::json::object{{"step", i}})) << i;
}

TEST_F(Calls, PromptsAreAnsweredAndTheAnswersReachTheMethod) {
  Client client = Client::connect(kName);
  std::vector<PromptRequest> seen;
  CallOptions options{
      .on_prompt = [&](const PromptRequest& prompt) -> std::optional<boost::json::value> {
        seen.push_back(prompt);
        if (prompt.type == "text") return boost::json::value("Alice");
        if (prompt.type == "confirm") return boost::json::value(true);
        return boost::json::value(prompt.options.at(1).value);
      }};
  const boost::json::value result =
      client.call("ask",
                  prompts({{{"type", "text"}, {"message", "Name?"}},
                           {{"type", "confirm"}, {"message", "Sure?"}, {"default", false}},
                           {{"type", "select"},
                            {"message", "Column?"},
                            {"options", {"todo", {{"value", "done"}, {"label", "Done"}}}},
                            {"extra", 1}}}),
                  options);
  EXPECT_EQ(result, (boost::json::array{"Alice", true, "done"}));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].message, "Name?");
  EXPECT_TRUE(seen[0].default_value.is_null());
  EXPECT_EQ(seen[1].type, "confirm");
  EXPECT_EQ(seen[1].default_value, false);
  ASSERT_EQ(seen[2].options.size(), 2u);
  EXPECT_EQ(seen[2].options[0].value, "todo");
  EXPECT_EQ(seen[2].options[0].label, "todo");
  EXPECT_EQ(seen[2].options[1].value, "done");
  EXPECT_EQ(seen[2].options[1].label, "Done");
  EXPECT_EQ(seen[2].raw.at("extra"), 1);
}

TEST_F(Calls, PromptsAreDeclinedWithoutAnAnswer) {
  Client client = Client::connect(kName);
  const auto asked = prompts({{{"type", "text"}, {"message", "Name?"}}});
  EXPECT_EQ(client.call("ask", asked), (boost::json::array{nullptr}));
  EXPECT_EQ(
      client.call(
          "ask", asked,
          {.on_prompt = [](const PromptRequest&) { return std::optional<boost::json::value>(); }}),
      (boost::json::array{nullptr}));
}

TEST_F(Calls, UnknownMethodIsRefusedWithTheAvailableOnes) {
  Client client = Client::connect(kName);
  try {
    client.call("nope");
    FAIL() << "an unknown method was called";
  } catch (const ClientError& error) {
    EXPECT_EQ(error.kind(), ClientError::Kind::kRefused);
    const std::string message = error.what();
    EXPECT_NE(message.find("unknown method \"nope\""), std::string::npos) << message;
    EXPECT_NE(message.find("echo, session, progress"), std::string::npos) << message;
  }
  client.ping();
}

TEST_F(Calls, FailuresAreRefusals) {
  Client client = Client::connect(kName);
  for (const char* method : {"fail", "crash", "stuck"}) {
    try {
      client.call(method);
      ADD_FAILURE() << method << " succeeded";
    } catch (const ClientError& error) {
      EXPECT_EQ(error.kind(), ClientError::Kind::kRefused) << method;
      const std::string message = error.what();
      if (method == std::string("fail")) {
        EXPECT_EQ(message, "the board is locked");
      } else if (method == std::string("stuck")) {
        EXPECT_NE(message.find("timed out"), std::string::npos) << message;
      }
    }
  }
}

TEST_F(Calls, ListMethodsDescribesThemInOrder) {
  Client client = Client::connect(kName);
  const std::vector<photon::MethodDescription> methods = client.list_methods();
  std::vector<std::string> names;
  for (const auto& method : methods) names.push_back(method.name);
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "session", "progress", "ask", "fail", "crash",
                                             "slow", "stuck"}));
  ASSERT_FALSE(methods.empty());
  EXPECT_EQ(methods[0].description, "Returns its args");
  ASSERT_EQ(methods[0].params.size(), 2u);
  EXPECT_EQ(methods[0].params[0].name, "x");
  EXPECT_EQ(methods[0].params[0].type, "number");
  EXPECT_EQ(methods[0].params[0].description, "Any number");
  EXPECT_TRUE(methods[0].params[0].required);
  EXPECT_EQ(methods[0].params[1].name, "note");
  EXPECT_FALSE(methods[0].params[1].required);
}

TEST_F(Calls, ChannelMessagesDuringACallAreKeptForNext) {
  Client caller = Client::connect(kName);
  caller.subscribe("news");
  Client publisher = Client::connect(kName);
  // Published while the method waits for its answer, so they reach the caller before the result.
  const boost::json::value result =
      caller.call("ask", prompts({{{"type", "text"}, {"message", "Go?"}}}),
                  {.on_prompt = [&](const PromptRequest&) -> std::optional<boost::json::value> {
                    publisher.publish("news", 1);
                    publisher.publish("news", 2);
                    return boost::json::value("go");
                  }});
  EXPECT_EQ(result, (boost::json::array{"go"}));
  for (int i = 1; i <= 2; ++i) {
    auto message = caller.next(0ms);
    ASSERT_TRUE(message) << i;
    EXPECT_EQ(message->channel, "news");
    EXPECT_EQ(message->message, i);
  }
  EXPECT_FALSE(caller.next(0ms));
}

TEST_F(Calls, TimeoutLeavesTheMethodRunningAndTheClientUsable) {
  Client client = Client::connect(kName);
  try {
    client.call("slow", {}, {.timeout = 100ms});
    FAIL() << "no timeout";
  } catch (const ClientError& error) {
    EXPECT_EQ(error.kind(), ClientError::Kind::kTimeout);
    EXPECT_NE(std::string(error.what()).find("may still be running"), std::string::npos);
  }
  client.ping();
  EXPECT_EQ(client.call("echo", {{"x", 2}}), (boost::json::object{{"x", 2}}));
  // The first call's late result arrives during this one and is skipped.
  EXPECT_EQ(client.call("slow"), "late");
}

TEST_F(Calls, TimeSpentAnsweringDoesNotCountTowardsTheTimeout) {
  Client client = Client::connect(kName);
  // The answer takes longer than the whole timeout; the rest of the call (starting the method
  // and getting its prompt, which a loaded machine may slow) must fit in it, so it is generous.
  const boost::json::value result =
      client.call("ask", prompts({{{"type", "text"}, {"message", "Slowly?"}}}),
                  {.on_prompt = [](const PromptRequest&) -> std::optional<boost::json::value> {
                     std::this_thread::sleep_for(5500ms);
                     return boost::json::value("yes");
                   },
                   .timeout = 5s});
  EXPECT_EQ(result, (boost::json::array{"yes"}));
}

TEST_F(Calls, AHandlerThrowingDeclinesThePromptAndPropagates) {
  Client client = Client::connect(kName);
  const auto asked = prompts({{{"type", "text"}, {"message", "Name?"}}});
  EXPECT_THROW(
      client.call("ask", asked,
                  {.on_prompt = [](const PromptRequest&) -> std::optional<boost::json::value> {
                    throw std::runtime_error("no terminal");
                  }}),
      std::runtime_error);
  client.ping();
  // Declined, the method ends at once instead of waiting for the prompt timeout.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (client.status().at("methods").at("running") != 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(client.status().at("methods").at("running"), 0);
  EXPECT_EQ(client.call("ask", asked), (boost::json::array{nullptr}));
}

}  // namespace
