// Unit tests of EmbeddedHost: fake photon classes run on the real thread pool, reported back to a
// real io_context, with a fake clock for session expiry.
#include "methods/embedded_host.hpp"
#include "fake_clock.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace photon::core {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

// Remembers everything a call reported.
class RecordingObserver final : public CallObserver {
 public:
  void on_emit(json::object event) override { emits.push_back(std::move(event)); }
  void on_prompt(json::object prompt, PromptAnswer answer) override {
    prompts.push_back(std::move(prompt));
    answers.push_back(std::move(answer));
  }
  void on_finish(CallOutcome result) override {
    ++finishes;
    outcome = std::move(result);
  }

  std::vector<json::object> emits;
  std::vector<json::object> prompts;
  std::vector<PromptAnswer> answers;
  int finishes = 0;
  CallOutcome outcome;
};

// Two calls meet here; each waits at most 5 s for the other, so calls that cannot overlap make the
// test fail (meet returns false) instead of hanging.
class Rendezvous {
 public:
  bool meet() {
    std::unique_lock lock(mutex_);
    if (++arrived_ == 2) {
      met_.notify_all();
      return true;
    }
    return met_.wait_for(lock, std::chrono::seconds(5), [this] { return arrived_ >= 2; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable met_;
  int arrived_ = 0;
};

// A photon whose methods exercise the host. Static state is reset by each test.
struct Probe {
  static inline std::atomic<int> running{0};
  static inline std::atomic<int> most_running{0};
  static inline std::atomic<int> constructions{0};
  static inline std::atomic<int> failing_constructions{0};
  static inline Rendezvous* rendezvous = nullptr;

  Probe() {
    ++constructions;
    if (failing_constructions > 0) {
      --failing_constructions;
      throw std::runtime_error("disk full");
    }
  }

  json::value echo(Context& context, const json::object& args) {
    return json::object{{"args", args},
                        {"session", context.session_id()},
                        {"clientType", context.client_type()},
                        {"method", context.method()}};
  }
  json::value count(Context&, const json::object&) { return ++calls_; }
  json::value fail(Context&, const json::object& args) {
    if (args.contains("plain")) throw std::runtime_error("plain failure");
    throw MethodError("the task is locked");
  }
  json::value emit_many(Context& context, const json::object&) {
    for (int i = 0; i < 100; ++i) context.emit({{"i", i}});
    return "done";
  }
  json::value ask(Context& context, const json::object&) {
    std::optional<json::value> answer = context.prompt(Prompt::text("Name?", "anonymous"));
    return answer ? *answer : json::value("no answer");
  }
  // Records how many calls overlap; sleeps so that overlap would be seen.
  json::value overlap(Context&, const json::object& args) {
    const int now = ++running;
    int seen = most_running.load();
    while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(20ms);
    --running;
    return args.at("i");
  }
  // True when another call reached the same point while this one waited.
  json::value meet(Context&, const json::object&) { return rendezvous->meet(); }
  json::value spin_until_cancelled(Context& context, const json::object&) {
    while (!context.cancelled()) std::this_thread::sleep_for(5ms);
    return "stopped";
  }

  static constexpr std::string_view photon_name = "probe";
  static MethodTable<Probe> methods() {
    return {
        {"echo", &Probe::echo, "Returns what it was given", {{"x", "number", "anything", false}}},
        {"count", &Probe::count, "Counts calls on this instance"},
        {"fail", &Probe::fail, "Fails"},
        {"emitMany", &Probe::emit_many, "Emits 100 events"},
        {"ask", &Probe::ask, "Prompts"},
        {"overlap", &Probe::overlap, "Measures overlap"},
        {"meet", &Probe::meet, "Waits for a second caller"},
        {"spin", &Probe::spin_until_cancelled, "Runs until cancelled"}};
  }

 private:
  int calls_ = 0;
};

class EmbeddedHostTest : public ::testing::Test {
 protected:
  EmbeddedHostTest() {
    Probe::running = 0;
    Probe::most_running = 0;
    Probe::constructions = 0;
    Probe::failing_constructions = 0;
  }

  void make_host(PhotonDefinition definition = define_photon<Probe>(),
                 EmbeddedHostOptions options = {
                     .threads = 4, .session_timeout = 10min, .max_sessions = 100}) {
    host_ = std::make_unique<EmbeddedHost>(loop_.get_executor(), clock_, std::move(definition),
                                           options);
  }

  std::shared_ptr<RecordingObserver> call(std::string method, json::object args = {},
                                          std::string session = "default") {
    auto observer = std::make_shared<RecordingObserver>();
    host_->start({std::move(method), std::move(args), std::move(session), "cli"}, observer);
    return observer;
  }

  // Runs the loop until `done` holds; fails the test after 10 s.
  template <class Predicate>
  bool run_until(Predicate done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "timed out waiting";
        return false;
      }
      loop_.restart();
      loop_.run_for(5ms);
    }
    return true;
  }

  bool finish(const std::shared_ptr<RecordingObserver>& observer) {
    return run_until([&] { return observer->finishes > 0; });
  }

  boost::asio::io_context loop_;
  testing::FakeClock clock_;
  std::unique_ptr<EmbeddedHost> host_;
};

TEST_F(EmbeddedHostTest, ListsTheMethodTable) {
  make_host();
  ASSERT_EQ(host_->methods().size(), 8u);
  EXPECT_EQ(host_->methods()[0].name, "echo");
  EXPECT_EQ(host_->methods()[0].description, "Returns what it was given");
  ASSERT_EQ(host_->methods()[0].params.size(), 1u);
  EXPECT_EQ(host_->methods()[0].params[0].type, "number");
  EXPECT_FALSE(host_->methods()[0].params[0].required);
}

TEST_F(EmbeddedHostTest, ResultAndContextReachTheObserver) {
  make_host();
  auto observer = call("echo", {{"x", 1}}, "s1");
  EXPECT_EQ(observer->finishes, 0) << "never reported from inside start()";
  ASSERT_TRUE(finish(observer));
  ASSERT_TRUE(observer->outcome.ok());
  EXPECT_EQ(observer->outcome.data,
            json::parse(R"({"args":{"x":1},"session":"s1","clientType":"cli","method":"echo"})"));
  EXPECT_EQ(observer->finishes, 1);
}

TEST_F(EmbeddedHostTest, ExceptionsFailTheCallWithTheirMessage) {
  make_host();
  auto method_error = call("fail");
  auto plain = call("fail", {{"plain", true}});
  ASSERT_TRUE(finish(method_error));
  ASSERT_TRUE(finish(plain));
  EXPECT_EQ(method_error->outcome.status, CallStatus::kFailed);
  EXPECT_EQ(method_error->outcome.error, "the task is locked");
  EXPECT_EQ(plain->outcome.error, "plain failure");
}

TEST_F(EmbeddedHostTest, EmitsArriveInOrderBeforeTheEnd) {
  make_host();
  auto observer = call("emitMany");
  ASSERT_TRUE(finish(observer));
  ASSERT_EQ(observer->emits.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(observer->emits[i].at("i"), i);
}

TEST_F(EmbeddedHostTest, EachSessionHasItsOwnInstance) {
  make_host();
  for (int i = 1; i <= 3; ++i) {
    auto observer = call("count", {}, "a");
    ASSERT_TRUE(finish(observer));
    EXPECT_EQ(observer->outcome.data, i);
  }
  auto other = call("count", {}, "b");
  ASSERT_TRUE(finish(other));
  EXPECT_EQ(other->outcome.data, 1);
  EXPECT_EQ(host_->stats().sessions, 2u);
  EXPECT_EQ(Probe::constructions, 2);
}

TEST_F(EmbeddedHostTest, CallsOfOneSessionRunOneAtATimeInOrder) {
  make_host();
  std::vector<std::shared_ptr<RecordingObserver>> observers;
  for (int i = 0; i < 8; ++i) observers.push_back(call("overlap", {{"i", i}}, "a"));
  EXPECT_EQ(host_->stats().running, 8u);
  std::vector<int> order;
  ASSERT_TRUE(run_until([&] {
    return std::all_of(observers.begin(), observers.end(), [](auto& o) { return o->finishes > 0; });
  }));
  EXPECT_EQ(Probe::most_running, 1);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(observers[i]->outcome.data, i);
  EXPECT_EQ(host_->stats().running, 0u);
}

TEST_F(EmbeddedHostTest, DifferentSessionsRunAtTheSameTime) {
  make_host();
  Rendezvous both;
  Probe::rendezvous = &both;
  auto first = call("meet", {}, "a");
  auto second = call("meet", {}, "b");
  ASSERT_TRUE(finish(first));
  ASSERT_TRUE(finish(second));
  EXPECT_EQ(first->outcome.data, true);
  EXPECT_EQ(second->outcome.data, true);
}

TEST_F(EmbeddedHostTest, AConcurrentPhotonOverlapsWithinASession) {
  PhotonDefinition definition = define_photon<Probe>();
  definition.concurrent = true;
  make_host(std::move(definition));
  Rendezvous both;
  Probe::rendezvous = &both;
  auto first = call("meet", {}, "a");
  auto second = call("meet", {}, "a");
  ASSERT_TRUE(finish(first));
  ASSERT_TRUE(finish(second));
  EXPECT_EQ(first->outcome.data, true);
  EXPECT_EQ(second->outcome.data, true);
}

TEST_F(EmbeddedHostTest, APromptIsAnsweredThroughTheObserver) {
  make_host();
  auto observer = call("ask");
  ASSERT_TRUE(run_until([&] { return !observer->prompts.empty(); }));
  EXPECT_EQ(observer->prompts[0],
            json::parse(R"({"type":"text","message":"Name?","default":"anonymous"})"));
  observer->answers[0](json::value("Ada"));
  ASSERT_TRUE(finish(observer));
  EXPECT_EQ(observer->outcome.data, "Ada");
}

TEST_F(EmbeddedHostTest, AnUnansweredPromptGivesTheMethodNothing) {
  make_host();
  auto observer = call("ask");
  ASSERT_TRUE(run_until([&] { return !observer->prompts.empty(); }));
  observer->answers[0](std::nullopt);
  ASSERT_TRUE(finish(observer));
  EXPECT_EQ(observer->outcome.data, "no answer");
}

TEST_F(EmbeddedHostTest, CancelAllStopsRunningAndQueuedCalls) {
  make_host();
  auto spinning = call("spin", {}, "a");
  auto queued = call("count", {}, "a");  // waits behind `spin` in session a
  auto asking = call("ask", {}, "b");
  ASSERT_TRUE(run_until([&] { return !asking->prompts.empty(); }));
  bool done = false;
  host_->cancel_all([&] { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(spinning->outcome.data, "stopped");
  EXPECT_EQ(queued->outcome.status, CallStatus::kCancelled);
  EXPECT_EQ(asking->outcome.data, "no answer") << "a prompt gives up when the call is cancelled";
  EXPECT_EQ(host_->stats().running, 0u);

  auto late = call("count", {}, "c");
  ASSERT_TRUE(finish(late));
  EXPECT_EQ(late->outcome.status, CallStatus::kCancelled);
}

TEST_F(EmbeddedHostTest, IdleSessionsExpireAndBusyOnesStay) {
  make_host();
  auto first = call("count", {}, "idle");
  ASSERT_TRUE(finish(first));
  auto asking = call("ask", {}, "busy");
  ASSERT_TRUE(run_until([&] { return !asking->prompts.empty(); }));

  clock_.advance(10min - 1ms);
  host_->expire_idle_sessions();
  EXPECT_EQ(host_->stats().sessions, 2u);
  clock_.advance(1ms);
  host_->expire_idle_sessions();
  EXPECT_EQ(host_->stats().sessions, 1u) << "the busy session stays";

  auto again = call("count", {}, "idle");
  ASSERT_TRUE(finish(again));
  EXPECT_EQ(again->outcome.data, 1) << "a fresh instance after expiry";
  asking->answers[0](std::nullopt);
  ASSERT_TRUE(finish(asking));
}

TEST_F(EmbeddedHostTest, AFailedConstructionFailsTheCallAndIsRetried) {
  make_host();
  Probe::failing_constructions = 1;
  auto first = call("count", {}, "a");
  ASSERT_TRUE(finish(first));
  EXPECT_EQ(first->outcome.status, CallStatus::kFailed);
  EXPECT_NE(first->outcome.error.find("disk full"), std::string::npos) << first->outcome.error;
  auto second = call("count", {}, "a");
  ASSERT_TRUE(finish(second));
  EXPECT_EQ(second->outcome.data, 1);
}

TEST_F(EmbeddedHostTest, TooManySessionsIsBusy) {
  make_host(define_photon<Probe>(), {.threads = 2, .session_timeout = 10min, .max_sessions = 2});
  for (std::string session : {"a", "b"}) ASSERT_TRUE(finish(call("count", {}, session)));
  auto refused = call("count", {}, "c");
  ASSERT_TRUE(finish(refused));
  EXPECT_EQ(refused->outcome.status, CallStatus::kBusy);
  EXPECT_NE(refused->outcome.error.find("limit 2"), std::string::npos);
}

}  // namespace
}  // namespace photon::core
