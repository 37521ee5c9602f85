// Exec photons with real child processes: the stdout protocol, prompts, failures, timeouts, output
// bounds, limits, cancellation, and that no child or descriptor outlives its call.
#include "methods/exec_host.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace photon::core {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// True while the test is inside ExecHost::start: observers must never be called then.
bool g_inside_start = false;

class Recorder : public CallObserver {
 public:
  void on_emit(json::object event) override {
    EXPECT_FALSE(g_inside_start);
    EXPECT_FALSE(outcome) << "emit after finish";
    emits.push_back(std::move(event));
  }
  void on_prompt(json::object prompt, PromptAnswer answer) override {
    EXPECT_FALSE(g_inside_start);
    EXPECT_FALSE(outcome) << "prompt after finish";
    prompts.push_back(prompt);
    if (answer_with) {
      answer_with(std::move(answer));
    } else {
      answer(std::nullopt);
    }
  }
  void on_finish(CallOutcome result) override {
    EXPECT_FALSE(g_inside_start);
    ++finishes;
    outcome = std::move(result);
  }

  std::vector<json::object> emits;
  std::vector<json::object> prompts;
  std::function<void(PromptAnswer)> answer_with;  // default: answers nothing (null)
  std::optional<CallOutcome> outcome;
  int finishes = 0;
};

bool process_gone(pid_t pid) {
  // A killed grandchild belongs to init afterwards: gone, or a zombie init has yet to reap.
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren == std::string::npos || line.substr(paren + 2, 1) == "Z";
}

bool no_children_left() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

class ExecHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    std::string pattern = (fs::temp_directory_path() / "photon-exec-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    options_.photon_name = "testphoton";
    options_.socket = dir_ / "testphoton.sock";
    options_.kill_grace = 200ms;
  }

  void TearDown() override {
    host_.reset();
    EXPECT_TRUE(no_children_left());
    fs::remove_all(dir_);
  }

  // A method running `command` through /bin/sh -c, in the test's directory.
  ExecMethod shell(const std::string& name, const std::string& command) {
    return argv(name, {"/bin/sh", "-c", command});
  }
  ExecMethod argv(const std::string& name, std::vector<std::string> args) {
    ExecMethod method;
    method.info.name = name;
    method.argv = std::move(args);
    method.working_dir = dir_;
    method.timeout = 10s;
    return method;
  }
  ExecMethod python(const std::string& name, const std::string& code) {
    return argv(name, {"python3", "-c", code});
  }

  void make_host(std::vector<ExecMethod> methods) {
    Manifest manifest;
    manifest.file = dir_ / "photon.toml";
    manifest.methods = std::move(methods);
    host_ = std::make_unique<ExecHost>(io_, std::move(manifest), options_);
  }

  std::shared_ptr<Recorder> start(const std::string& method, json::object args = {},
                                  std::string client_type = "cli") {
    auto recorder = std::make_shared<Recorder>();
    g_inside_start = true;
    host_->start(CallRequest{method, std::move(args), "s1", std::move(client_type)}, recorder);
    g_inside_start = false;
    return recorder;
  }

  // Runs the loop until `done` holds; false after the safety deadline.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      io_.restart();
      io_.run_for(5ms);
    }
    return true;
  }

  // Runs a call to its end; checks that on_finish comes exactly once.
  CallOutcome call(const std::string& method, json::object args = {}) {
    auto recorder = start(method, std::move(args));
    last_ = recorder;
    EXPECT_TRUE(run_until([&] { return recorder->outcome.has_value(); })) << "no outcome";
    if (!recorder->outcome) return CallOutcome::failure(CallStatus::kFailed, "test: no outcome");
    io_.restart();
    io_.poll();
    EXPECT_EQ(recorder->finishes, 1);
    return *recorder->outcome;
  }

  pid_t read_pid(const std::string& file) {
    pid_t pid = 0;
    EXPECT_TRUE(
        run_until([&] { return fs::exists(dir_ / file) && fs::file_size(dir_ / file) > 0; }));
    std::ifstream(dir_ / file) >> pid;
    return pid;
  }

  void write_file(const std::string& name, const std::string& text, bool executable) {
    std::ofstream(dir_ / name) << text;
    if (executable) fs::permissions(dir_ / name, fs::perms::owner_all);
  }

  boost::asio::io_context io_;
  fs::path dir_;
  ExecHostOptions options_;
  std::unique_ptr<ExecHost> host_;
  std::shared_ptr<Recorder> last_;
};

TEST_F(ExecHostTest, ListsMethodsInOrder) {
  ExecMethod first = shell("zeta", "true");
  first.info.description = "last letter";
  make_host({first, shell("alpha", "true")});
  ASSERT_EQ(host_->methods().size(), 2u);
  EXPECT_EQ(host_->methods()[0].name, "zeta");
  EXPECT_EQ(host_->methods()[0].description, "last letter");
  EXPECT_EQ(host_->methods()[1].name, "alpha");
  EXPECT_NE(find_method(*host_, "alpha"), nullptr);
}

TEST_F(ExecHostTest, ResultLine) {
  make_host({shell("m", R"(echo "some text"; echo '{"result":{"a":1}}'; echo "more text")")});
  const CallOutcome outcome = call("m");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::parse(R"({"a":1})"));
}

TEST_F(ExecHostTest, FinalLineWithoutNewlineIsProtocolToo) {
  make_host({shell("m", R"(printf '{"result":5}')")});
  const CallOutcome outcome = call("m");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value(5));
}

TEST_F(ExecHostTest, PlainJsonStdoutIsTheResult) {
  make_host({shell("list", "echo '[1, 2,'; echo ' 3]'"), shell("number", "printf '  42 \\n\\n'"),
             shell("nothing", "true"), shell("blank", "echo; echo '  '")});
  CallOutcome outcome = call("list");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::parse("[1,2,3]"));
  outcome = call("number");
  EXPECT_EQ(outcome.data, json::value(42));
  outcome = call("nothing");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_TRUE(outcome.data.is_null());
  outcome = call("blank");
  EXPECT_TRUE(outcome.data.is_null());
}

TEST_F(ExecHostTest, PlainTextStdoutIsAString) {
  make_host({shell("m", "echo '  hello'; echo world; echo"),
             shell("bad_utf8", "printf 'caf\\351 \\342\\202\\254 \\300\\257\\n'")});
  CallOutcome outcome = call("m");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value("  hello\nworld"));
  outcome = call("bad_utf8");
  // Replies are JSON: invalid UTF-8 (a Latin-1 byte, an overlong '/') becomes U+FFFD.
  EXPECT_EQ(outcome.data, json::value("caf\xEF\xBF\xBD \xE2\x82\xAC \xEF\xBF\xBD\xEF\xBF\xBD"));
}

TEST_F(ExecHostTest, EmitsArriveInOrder) {
  make_host({shell("m", R"(
echo '{"emit":{"n":1}}'
echo 'plain'
echo '{"emit":{"channel":"board:x","event":"moved","data":{"id":7}}}'
echo '  {"emit":{"n":3}}  '
echo '{"result":true}')")});
  const CallOutcome outcome = call("m");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value(true));
  ASSERT_EQ(last_->emits.size(), 3u);
  EXPECT_EQ(last_->emits[0], json::parse(R"({"n":1})").as_object());
  EXPECT_EQ(last_->emits[1],
            json::parse(R"({"channel":"board:x","event":"moved","data":{"id":7}})").as_object());
  EXPECT_EQ(last_->emits[2], json::parse(R"({"n":3})").as_object());
}

TEST_F(ExecHostTest, ArgsArriveOnStdinWhichThenCloses) {
  make_host(
      {shell("cat", R"(args=$(cat); printf '{"result":%s}\n' "$args")"),
       python("py", "import json, sys\nprint(json.dumps({'result': json.load(sys.stdin)}))")});
  const json::object args = json::parse(R"({"who":"Ann","n":[1,2],"deep":{"x":null}})").as_object();
  CallOutcome outcome = call("cat", args);
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, args);
  outcome = call("py", args);
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, args);
}

constexpr const char* kAsk = R"(
import json, sys
args = json.loads(sys.stdin.readline())
print(json.dumps({"prompt": {"type": "text", "message": "Name?", "default": args["default"]}}), flush=True)
answer = json.loads(sys.stdin.readline())
print(json.dumps({"result": {"answer": answer}}), flush=True)
)";

TEST_F(ExecHostTest, PromptAnswerIsWrittenToStdin) {
  ExecMethod ask = python("ask", kAsk);
  ask.interactive = true;
  make_host({ask});
  auto recorder = start("ask", json::parse(R"({"default":"Bob"})").as_object());
  // Answered later, from another handler, as a caller would.
  recorder->answer_with = [this](PromptAnswer answer) {
    boost::asio::post(io_, [answer] { answer(json::value("Ann")); });
  };
  ASSERT_TRUE(run_until([&] { return recorder->outcome.has_value(); }));
  ASSERT_TRUE(recorder->outcome->ok()) << recorder->outcome->error;
  EXPECT_EQ(recorder->outcome->data, json::parse(R"({"answer":"Ann"})"));
  ASSERT_EQ(recorder->prompts.size(), 1u);
  EXPECT_EQ(recorder->prompts[0],
            json::parse(R"({"type":"text","message":"Name?","default":"Bob"})").as_object());
}

TEST_F(ExecHostTest, PromptAnsweredWithNothingGivesNull) {
  ExecMethod ask = python("ask", kAsk);
  ask.interactive = true;
  make_host({ask});
  const CallOutcome outcome = call("ask", json::parse(R"({"default":"Bob"})").as_object());
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::parse(R"({"answer":null})"));
}

TEST_F(ExecHostTest, AnswerAfterTheCallEndedIsHarmless) {
  ExecMethod ask =
      shell("ask", R"(read -r args; echo '{"prompt":{"message":"?"}}'; echo '{"result":1}')");
  ask.interactive = true;
  make_host({ask});
  PromptAnswer kept;
  auto recorder = start("ask");
  recorder->answer_with = [&](PromptAnswer answer) { kept = std::move(answer); };
  ASSERT_TRUE(run_until([&] { return recorder->outcome.has_value(); }));
  EXPECT_TRUE(recorder->outcome->ok()) << recorder->outcome->error;
  ASSERT_TRUE(kept);
  kept(json::value(true));
  host_.reset();
  kept(json::value(false));
}

TEST_F(ExecHostTest, PromptFromANonInteractiveMethodFails) {
  make_host({shell("ask", R"(echo '{"prompt":{"message":"Sure?"}}'; sleep 5)")});
  const auto started = Clock::now();
  const CallOutcome outcome = call("ask");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_NE(outcome.error.find("interactive = true"), std::string::npos) << outcome.error;
  EXPECT_TRUE(last_->prompts.empty());
  EXPECT_LT(Clock::now() - started, 3s);
}

TEST_F(ExecHostTest, NonZeroExitCarriesTheStderrTail) {
  make_host({shell("greet",
                   "echo 'some output'; echo 'first problem' >&2; echo '  it broke  ' >&2; exit 3"),
             shell("result_then_fail", R"(echo '{"result":1}'; exit 2)"),
             shell("quiet", "exit 4")});
  CallOutcome outcome = call("greet");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "method greet exited with status 3: first problem\n  it broke");
  outcome = call("result_then_fail");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "method result_then_fail exited with status 2");
  outcome = call("quiet");
  EXPECT_EQ(outcome.error, "method quiet exited with status 4");
}

TEST_F(ExecHostTest, KilledBySignal) {
  make_host({shell("m", "echo dying >&2; kill -9 $$")});
  const CallOutcome outcome = call("m");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "method m killed by signal 9 (Killed): dying");
}

TEST_F(ExecHostTest, ErrorLine) {
  make_host({shell("m", R"(echo '{"error":"bad input"}'; echo '{"result":1}')"),
             shell("object", R"(echo '{"error":{"code":7}}'; exit 1)")});
  CallOutcome outcome = call("m");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "bad input");
  outcome = call("object");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, R"({"code":7})");
}

TEST_F(ExecHostTest, MalformedProtocolLinesArePlainOutput) {
  const std::string lines =
      "{\"emit\": 3}\n{\"result\":1,\"extra\":2}\n{not json\n{\"prompt\":\"x\"}\n{\"other\":1}\n";
  write_file("lines.txt", lines, false);
  make_host({shell("m", "cat lines.txt")});
  const CallOutcome outcome = call("m");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value(lines.substr(0, lines.size() - 1)));
  EXPECT_TRUE(last_->emits.empty());
  EXPECT_TRUE(last_->prompts.empty());
}

TEST_F(ExecHostTest, TimeoutKillsTheWholeGroup) {
  ExecMethod slow =
      shell("slow", "sleep 100 & echo $! > grandchild.pid; echo $$ > child.pid; sleep 100");
  slow.timeout = 200ms;
  // Ignores SIGTERM: SIGKILL follows after the grace.
  ExecMethod stubborn = shell(
      "stubborn", "trap '' TERM; sleep 100 & echo $! > stubborn.pid; while :; do sleep 1; done");
  stubborn.timeout = 200ms;
  make_host({slow, stubborn});

  auto started = Clock::now();
  CallOutcome outcome = call("slow");
  EXPECT_EQ(outcome.status, CallStatus::kTimedOut);
  EXPECT_EQ(outcome.error, "method slow timed out after 200 ms");
  EXPECT_LT(Clock::now() - started, 2s);
  const pid_t child = read_pid("child.pid");
  const pid_t grandchild = read_pid("grandchild.pid");
  EXPECT_TRUE(run_until([&] { return process_gone(child) && process_gone(grandchild); }, 2s));
  EXPECT_TRUE(no_children_left());

  started = Clock::now();
  outcome = call("stubborn");
  EXPECT_EQ(outcome.status, CallStatus::kTimedOut);
  EXPECT_NE(outcome.error.find("timed out"), std::string::npos);
  EXPECT_GE(Clock::now() - started, 400ms);  // timeout + grace
  EXPECT_LT(Clock::now() - started, 3s);
  const pid_t stubborn_child = read_pid("stubborn.pid");
  EXPECT_TRUE(run_until([&] { return process_gone(stubborn_child); }, 2s));
  EXPECT_TRUE(no_children_left());
}

TEST_F(ExecHostTest, LeftoverGrandchildCannotKeepTheCallAlive) {
  // The background sleep holds stdout open; the call still ends when the script does.
  make_host({shell("m", R"(sleep 100 & echo $! > grandchild.pid; echo '{"result":"done"}')")});
  const auto started = Clock::now();
  const CallOutcome outcome = call("m");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value("done"));
  EXPECT_LT(Clock::now() - started, 2s);
  const pid_t grandchild = read_pid("grandchild.pid");
  EXPECT_TRUE(run_until([&] { return process_gone(grandchild); }, 2s));
}

TEST_F(ExecHostTest, ProcessThatLeftTheGroupDelaysTheEndByTheGraceOnly) {
  // setsid escapes the group kill but still holds stdout: the call ends kill_grace after the exit.
  make_host({shell("m", R"(
setsid sh -c 'echo $$ > escaped.tmp; mv escaped.tmp escaped.pid; exec sleep 100' &
while [ ! -e escaped.pid ]; do sleep 0.01; done
echo '{"result":2}')")});
  const auto started = Clock::now();
  const CallOutcome outcome = call("m");
  const pid_t escaped = read_pid("escaped.pid");
  ::kill(escaped, SIGKILL);
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value(2));
  EXPECT_GE(Clock::now() - started, 200ms);
  EXPECT_LT(Clock::now() - started, 3s);
}

long max_rss_kib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST_F(ExecHostTest, HugeOutputIsCutOffQuickly) {
  options_.max_output_bytes = 1u << 20;
  make_host({shell("yes", "yes | head -c 50000000")});
  const long rss_before = max_rss_kib();
  const auto started = Clock::now();
  const CallOutcome outcome = call("yes");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "output of method yes exceeded 1048576 bytes");
  EXPECT_LT(Clock::now() - started, 5s);
  EXPECT_LT(max_rss_kib() - rss_before, 32 * 1024);  // far below the 50 MB it printed
}

TEST_F(ExecHostTest, OneHugeLineIsCutOff) {
  make_host({shell("line", "head -c 10000000 /dev/zero | tr '\\0' a")});
  const CallOutcome outcome = call("line");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "output of method line exceeded 4194304 bytes");
}

TEST_F(ExecHostTest, LongResultLineWithinTheLimit) {
  make_host({python("m", "import json\nprint(json.dumps({'result': 'x' * 3000000}))")});
  const CallOutcome outcome = call("m");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data.as_string().size(), 3000000u);
}

TEST_F(ExecHostTest, HugeStderrNeverBlocks) {
  make_host(
      {shell("ok", "head -c 5000000 /dev/zero | tr '\\0' e >&2; echo done"),
       shell("fails", "head -c 5000000 /dev/zero | tr '\\0' e >&2; echo ' the end' >&2; exit 1")});
  CallOutcome outcome = call("ok");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value("done"));
  outcome = call("fails");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  const std::string prefix = "method fails exited with status 1: ";
  ASSERT_EQ(outcome.error.rfind(prefix, 0), 0u);
  EXPECT_LE(outcome.error.size() - prefix.size(), 2048u);
  EXPECT_GE(outcome.error.size() - prefix.size(), 2000u);
  EXPECT_EQ(outcome.error.substr(outcome.error.size() - 9), "e the end");
}

TEST_F(ExecHostTest, EnvironmentAndWorkingDirectory) {
  fs::create_directories(dir_ / "work");
  ::setenv("PHOTON_TEST_INHERITED", "from the daemon", 1);
  ::setenv("PHOTON_CLIENT_TYPE", "stale", 1);
  ::setenv("PHOTON_TEST_OVERRIDDEN", "old", 1);
  ExecMethod env = python("env", R"(
import json, os
names = ["PHOTON_NAME", "PHOTON_METHOD", "PHOTON_SESSION_ID", "PHOTON_CLIENT_TYPE", "PHOTON_SOCKET",
         "PHOTON_TEST_INHERITED", "PHOTON_TEST_OVERRIDDEN", "GREETING"]
print(json.dumps({"result": {"cwd": os.getcwd(), "env": {n: os.environ.get(n) for n in names}}}))
)");
  env.working_dir = dir_ / "work";
  env.env = {{"GREETING", "hello"}, {"PHOTON_TEST_OVERRIDDEN", "new"}};
  make_host({env});

  auto recorder = start("env", {}, "mcp");
  ASSERT_TRUE(run_until([&] { return recorder->outcome.has_value(); }));
  ASSERT_TRUE(recorder->outcome->ok()) << recorder->outcome->error;
  const json::value expected = {{"cwd", (dir_ / "work").string()},
                                {"env",
                                 {{"PHOTON_NAME", "testphoton"},
                                  {"PHOTON_METHOD", "env"},
                                  {"PHOTON_SESSION_ID", "s1"},
                                  {"PHOTON_CLIENT_TYPE", "mcp"},
                                  {"PHOTON_SOCKET", (dir_ / "testphoton.sock").string()},
                                  {"PHOTON_TEST_INHERITED", "from the daemon"},
                                  {"PHOTON_TEST_OVERRIDDEN", "new"},
                                  {"GREETING", "hello"}}}};
  EXPECT_EQ(recorder->outcome->data, expected);

  // No client type: no PHOTON_CLIENT_TYPE at all, not even the daemon's own.
  recorder = start("env", {}, "");
  ASSERT_TRUE(run_until([&] { return recorder->outcome.has_value(); }));
  ASSERT_TRUE(recorder->outcome->ok()) << recorder->outcome->error;
  EXPECT_TRUE(recorder->outcome->data.at("env").at("PHOTON_CLIENT_TYPE").is_null());
  ::unsetenv("PHOTON_TEST_INHERITED");
  ::unsetenv("PHOTON_CLIENT_TYPE");
  ::unsetenv("PHOTON_TEST_OVERRIDDEN");
}

TEST_F(ExecHostTest, NoDescriptorLeaksIntoTheChild) {
  // Without O_CLOEXEC, as a careless part of the daemon might open one.
  const int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  make_host({argv("ls", {"ls", "/proc/self/fd"})});
  const CallOutcome outcome = call("ls");
  ::close(leaky);
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  // 0, 1 and 2, and the descriptor ls reads the directory with.
  std::istringstream lines(std::string(outcome.data.as_string()));
  std::set<int> fds;
  for (int fd = 0; lines >> fd;) fds.insert(fd);
  ASSERT_EQ(fds.size(), 4u) << outcome.data;
  EXPECT_EQ(*fds.begin(), 0);
  EXPECT_EQ(*std::next(fds.begin()), 1);
  EXPECT_EQ(*std::next(fds.begin(), 2), 2);
}

TEST_F(ExecHostTest, ProgramLookup) {
  write_file("script.sh", "#!/bin/sh\necho from-script\n", true);
  write_file("not_executable.sh", "#!/bin/sh\necho no\n", false);
  fs::create_directories(dir_ / "sub");
  ExecMethod relative = argv("relative", {"./script.sh"});
  ExecMethod in_sub = argv("in_sub", {"../script.sh"});
  in_sub.working_dir = dir_ / "sub";
  make_host({relative, in_sub, argv("path", {"echo", "via", "PATH"}),
             argv("missing", {"no-such-program-here"}), argv("denied", {"./not_executable.sh"}),
             argv("absent", {"./absent.sh"})});
  EXPECT_EQ(call("relative").data, json::value("from-script"));
  EXPECT_EQ(call("in_sub").data, json::value("from-script"));
  EXPECT_EQ(call("path").data, json::value("via PATH"));

  CallOutcome outcome = call("missing");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "cannot start method missing: no-such-program-here not found in PATH");
  outcome = call("denied");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_NE(outcome.error.find("Permission denied"), std::string::npos) << outcome.error;
  outcome = call("absent");
  EXPECT_NE(outcome.error.find("No such file or directory"), std::string::npos) << outcome.error;
  EXPECT_EQ(host_->stats().running, 0u);
}

TEST_F(ExecHostTest, UnknownMethodFails) {
  make_host({shell("m", "true")});
  const CallOutcome outcome = call("other");
  EXPECT_EQ(outcome.status, CallStatus::kFailed);
  EXPECT_EQ(outcome.error, "unknown method \"other\"; available: m");
}

TEST_F(ExecHostTest, MaxConcurrentRefusesWithBusy) {
  ExecMethod slow = shell("slow", "sleep 0.3; echo 1");
  slow.max_concurrent = 1;
  make_host({slow, shell("other", "echo 2")});
  auto first = start("slow");
  auto second = start("slow");
  auto other = start("other");
  EXPECT_EQ(host_->stats().running, 2u);
  EXPECT_FALSE(second->outcome);  // posted, never inside start
  ASSERT_TRUE(run_until([&] { return first->outcome && second->outcome && other->outcome; }));
  EXPECT_TRUE(first->outcome->ok()) << first->outcome->error;
  EXPECT_TRUE(other->outcome->ok()) << other->outcome->error;
  EXPECT_EQ(second->outcome->status, CallStatus::kBusy);
  EXPECT_EQ(second->outcome->error, "method slow is already running 1 times (max_concurrent 1)");
  EXPECT_EQ(host_->stats().running, 0u);
  EXPECT_TRUE(call("slow").ok());  // free again
}

TEST_F(ExecHostTest, MaxRunningRefusesWithBusy) {
  options_.max_running = 1;
  make_host({shell("a", "sleep 0.2"), shell("b", "true")});
  auto first = start("a");
  auto second = start("b");
  ASSERT_TRUE(run_until([&] { return first->outcome && second->outcome; }));
  EXPECT_TRUE(first->outcome->ok());
  EXPECT_EQ(second->outcome->status, CallStatus::kBusy);
  EXPECT_EQ(second->outcome->error, "1 methods are running already (limit 1)");
}

TEST_F(ExecHostTest, CancelAllStopsEverything) {
  make_host(
      {shell("sleepy", "sleep 100"), shell("stubborn", "trap '' TERM; while :; do sleep 1; done")});
  auto a = start("sleepy");
  auto b = start("stubborn");
  ASSERT_TRUE(run_until([] { return true; }));
  EXPECT_EQ(host_->stats().running, 2u);
  bool done = false;
  host_->cancel_all([&] {
    EXPECT_TRUE(a->outcome && b->outcome) << "done before the calls finished";
    done = true;
  });
  EXPECT_FALSE(done);
  ASSERT_TRUE(run_until([&] { return done; }, 5s));
  EXPECT_EQ(a->outcome->status, CallStatus::kCancelled);
  EXPECT_EQ(a->outcome->error, "method sleepy was cancelled: the daemon is shutting down");
  EXPECT_EQ(b->outcome->status, CallStatus::kCancelled);
  EXPECT_EQ(host_->stats().running, 0u);
  EXPECT_TRUE(no_children_left());

  // Nothing runs: done is posted at once. New calls are refused.
  bool again = false;
  host_->cancel_all([&] { again = true; });
  EXPECT_FALSE(again);
  ASSERT_TRUE(run_until([&] { return again; }));
  const CallOutcome refused = call("sleepy");
  EXPECT_EQ(refused.status, CallStatus::kCancelled);
}

TEST_F(ExecHostTest, DestructorKillsAndReapsRunningChildren) {
  make_host(
      {shell("m", "echo $$ > child.pid; sleep 100 & echo $! > grandchild.pid; exec sleep 100")});
  auto recorder = start("m");
  const pid_t child = read_pid("child.pid");
  const pid_t grandchild = read_pid("grandchild.pid");
  EXPECT_EQ(host_->stats().running, 1u);
  host_.reset();
  EXPECT_TRUE(no_children_left());
  EXPECT_TRUE(::kill(child, 0) != 0 && errno == ESRCH);  // reaped, not a zombie
  EXPECT_TRUE(run_until([&] { return process_gone(grandchild); }, 2s));
  io_.restart();
  io_.poll();
  EXPECT_FALSE(recorder->outcome);  // nothing is delivered once the host is gone
}

#ifdef PHOTON_SOURCE_DIR
// The example photon of examples/scripts, run through its manifest.
TEST_F(ExecHostTest, ExampleScripts) {
  Manifest manifest = load_manifest(fs::path(PHOTON_SOURCE_DIR) / "examples/scripts/photon.toml");
  host_ = std::make_unique<ExecHost>(io_, std::move(manifest), options_);

  CallOutcome outcome = call("hello");
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::value("Hello, world!"));
  outcome = call("hello", {{"who", "Ann"}});
  EXPECT_EQ(outcome.data, json::value("Hello, Ann!"));

  outcome = call("moveTask", {{"taskId", 1}, {"column", "done"}});
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.data, json::parse(R"({"moved":true,"taskId":1,"column":"done"})"));
  ASSERT_EQ(last_->emits.size(), 2u);
  EXPECT_FALSE(last_->emits[0].contains("channel"));
  EXPECT_EQ(last_->emits[1], json::parse(R"({"channel":"board:scripts","event":"task-moved",
                                             "data":{"taskId":1,"column":"done"}})")
                                 .as_object());
  outcome = call("moveTask", {{"taskId", 1}});
  EXPECT_EQ(outcome.status, CallStatus::kFailed);

  auto recorder = start("confirmDelete");
  recorder->answer_with = [](PromptAnswer answer) { answer(json::value(true)); };
  ASSERT_TRUE(run_until([&] { return recorder->outcome.has_value(); }));
  ASSERT_TRUE(recorder->outcome->ok()) << recorder->outcome->error;
  EXPECT_EQ(recorder->outcome->data, json::parse(R"({"taskId":1,"confirmed":true})"));
  ASSERT_EQ(recorder->prompts.size(), 1u);
  EXPECT_EQ(
      recorder->prompts[0],
      json::parse(R"({"type":"confirm","message":"Delete task 1?","default":false})").as_object());
  outcome = call("confirmDelete", {{"taskId", 2}});  // declined: the answer is null
  EXPECT_EQ(outcome.data, json::parse(R"({"taskId":2,"confirmed":false})"));
}
#endif

}  // namespace
}  // namespace photon::core
