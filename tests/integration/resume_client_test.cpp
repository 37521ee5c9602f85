// libphoton's Client reconnecting on its own (ReconnectOptions) against the real photond: a
// connection cut while a publisher floods, a daemon restart, a request cut off by the drop.
#include "daemon_fixture.hpp"
#include "photon/client.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using photon::ChannelMessage;
using photon::Client;
using photon::ClientError;
using photon::ClientOptions;

// What a reconnecting client's callbacks saw.
struct Outages {
  std::vector<std::string> refreshes;
  int disconnects = 0;
  int reconnects = 0;
};

ClientOptions reconnecting(Outages& outages) {
  ClientOptions options;
  options.reconnect.enabled = true;
  options.reconnect.initial_backoff = 10ms;
  options.reconnect.max_backoff = 200ms;
  options.reconnect.on_refresh_needed = [&outages](const std::string& channel) {
    outages.refreshes.push_back(channel);
  };
  options.reconnect.on_disconnect = [&outages](const ClientError&) { ++outages.disconnects; };
  options.reconnect.on_reconnect = [&outages] { ++outages.reconnects; };
  return options;
}

std::string epoch_of(const std::string& event_id) {
  return event_id.substr(0, event_id.rfind('-'));
}

std::uint64_t dropped_slow_consumers(Client& client) {
  return client.status().at("counters").at("droppedSlowConsumers").to_number<std::uint64_t>();
}

// A daemon that cuts off a subscriber whose queue stays over 64 KiB for a second (the timer checks
// a queue that stopped growing), and keeps every message published meanwhile. The replay after
// the cut is larger than 64 KiB too, but drained well within its second.
class ResumeClient : public photon::testing::DaemonFixture {
 protected:
  std::vector<std::string> serve_args(const std::filesystem::path&) override {
    return {"--output-soft-limit",       "65536",  "--output-soft-seconds",  "1",
            "--replay-messages",         "100000", "--replay-bytes",         "64m",
            "--replay-channel-messages", "100000", "--replay-channel-bytes", "64m"};
  }

  // SIGKILL: the daemon leaves its socket behind and answers nothing until started again.
  void kill_daemon() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid_, &status, 0), pid_);
    pid_ = -1;
    ASSERT_TRUE(WIFSIGNALED(status));
  }
};

TEST_F(ResumeClient, ACutConnectionIsResumedWithEveryMessageOnceAndInOrder) {
  Outages outages;
  ClientOptions options = reconnecting(outages);
  std::atomic<bool> resumed = false;
  options.reconnect.on_reconnect = [&] {
    ++outages.reconnects;
    resumed = true;
  };
  Client subscriber = Client::connect(kName, options);
  // Overlapping on purpose: flood:a's messages match both, and must still come once each.
  subscriber.subscribe("flood:a");
  subscriber.subscribe("flood:*");

  // The publisher floods while the subscriber does not read, far past the kernel's buffers and
  // the soft limit, and waits for the daemon to cut the subscriber off. Then it goes on while
  // the subscriber reconnects, until the subscriber has resumed and 50 more went out live, and
  // ends with a marker.
  constexpr int kFlood = 600;
  std::mutex mutex;
  std::condition_variable changed;
  bool cut = false;
  int published = -1;  // the marker's n, once every message before it is published
  std::string publisher_error;
  std::atomic<bool> abandoned = false;  // the test failed: stop publishing
  std::thread publisher_thread([&] {
    try {
      Client publisher = Client::connect(kName);
      const std::string pad(1024, 'p');
      int n = 0;
      auto publish_next = [&] {
        publisher.publish(n % 2 ? "flood:b" : "flood:a", {{"n", n}, {"pad", pad}});
        ++n;
      };
      while (n < kFlood) publish_next();
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (dropped_slow_consumers(publisher) == 0) {
        if (abandoned || std::chrono::steady_clock::now() > deadline) {
          throw std::runtime_error("the subscriber was not cut off");
        }
      }
      {
        std::lock_guard lock(mutex);
        cut = true;
      }
      changed.notify_all();
      int stop_at = -1;
      while (stop_at < 0 || n < stop_at) {
        if (stop_at < 0 && resumed) stop_at = n + 50;
        if (abandoned || n > 100'000) throw std::runtime_error("the subscriber did not resume");
        publish_next();
      }
      publisher.publish("flood:end", {{"n", n}});
      std::lock_guard lock(mutex);
      published = n;
    } catch (const std::exception& error) {
      std::lock_guard lock(mutex);
      publisher_error = error.what();
      cut = true;
    }
    changed.notify_all();
  });
  // A failed assertion returns early: the publisher must still be stopped and joined.
  struct Joined {
    std::atomic<bool>& abandoned;
    std::thread& thread;
    ~Joined() {
      abandoned = true;
      if (thread.joinable()) thread.join();
    }
  } joined{abandoned, publisher_thread};
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 60s, [&] { return cut; }));
  }

  std::vector<ChannelMessage> received;
  std::set<std::string> event_ids;
  for (;;) {
    auto message = subscriber.next(20s);
    ASSERT_TRUE(message) << "a message is missing after n = " << received.size();
    if (message->channel == "flood:end") break;
    ASSERT_EQ(message->message.at("n").to_number<int>(), static_cast<int>(received.size()))
        << "out of order, missing or twice";
    EXPECT_EQ(message->channel, received.size() % 2 ? "flood:b" : "flood:a");
    EXPECT_TRUE(event_ids.insert(message->event_id).second);
    received.push_back(std::move(*message));
  }
  publisher_thread.join();
  std::lock_guard lock(mutex);
  ASSERT_EQ(publisher_error, "");
  EXPECT_EQ(static_cast<int>(received.size()), published);

  // The cut lost what the daemon had queued: that came back as replays, then the live ones.
  const auto first_replay = std::find_if(received.begin(), received.end(),
                                         [](const ChannelMessage& m) { return m.replay; });
  ASSERT_NE(first_replay, received.end()) << "nothing was replayed: was the connection cut?";
  EXPECT_FALSE(received.back().replay) << "the publisher went on after the resume";
  EXPECT_EQ(outages.disconnects, 1);
  EXPECT_EQ(outages.reconnects, 1);
  EXPECT_EQ(outages.refreshes, std::vector<std::string>{});
  Client probe = Client::connect(kName);
  EXPECT_EQ(dropped_slow_consumers(probe), 1u);
}

TEST_F(ResumeClient, ADaemonRestartCallsOnRefreshNeededThenLiveMessagesFollow) {
  Outages outages;
  Client subscriber = Client::connect(kName, reconnecting(outages));
  subscriber.subscribe("quiet");
  subscriber.subscribe("board:*");
  std::string before_restart;
  {
    Client publisher = Client::connect(kName);
    publisher.publish("board:a", {{"run", 1}});
    auto message = subscriber.next(5s);
    ASSERT_TRUE(message);
    before_restart = message->event_id;
    EXPECT_FALSE(message->replay);
  }
  ASSERT_FALSE(before_restart.empty());

  stop_daemon();
  start_daemon();
  // The restarted daemon cannot vouch for the old epoch's id: each subscription is told.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (outages.refreshes.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    EXPECT_FALSE(subscriber.next(100ms));
  }
  // Patterns are resumed first.
  EXPECT_EQ(outages.refreshes, (std::vector<std::string>{"board:*", "quiet"}));
  EXPECT_EQ(outages.disconnects, 1);
  EXPECT_EQ(outages.reconnects, 1);

  Client publisher = Client::connect(kName);
  EXPECT_EQ(publisher.publish("board:b", {{"run", 2}}), 1u);
  auto live = subscriber.next(5s);
  ASSERT_TRUE(live);
  EXPECT_EQ(live->channel, "board:b");
  EXPECT_EQ(live->message, (boost::json::value{{"run", 2}}));
  EXPECT_FALSE(live->replay);
  EXPECT_NE(epoch_of(live->event_id), epoch_of(before_restart));
  EXPECT_EQ(outages.refreshes.size(), 2u);
}

TEST_F(ResumeClient, ASubscriptionWithNothingReceivedIsToldToRefreshAfterADrop) {
  // No message arrived after the subscription: no event id says where it stood.
  Outages outages;
  Client subscriber = Client::connect(kName, reconnecting(outages));
  subscriber.subscribe("never");
  stop_daemon();
  start_daemon();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (outages.refreshes.empty() && std::chrono::steady_clock::now() < deadline) {
    EXPECT_FALSE(subscriber.next(100ms));
  }
  EXPECT_EQ(outages.refreshes, std::vector<std::string>{"never"});
}

TEST_F(ResumeClient, ARequestCutOffByTheDropThrowsAndTheClientComesBack) {
  ClientOptions holder_options;
  holder_options.session_id = "holder";
  Client holder = Client::connect(kName, holder_options);
  ASSERT_TRUE(holder.acquire_lock("l"));

  Outages outages;
  ClientOptions options = reconnecting(outages);
  options.session_id = "waiter";
  options.timeout = 300ms;
  Client waiter = Client::connect(kName, options);
  std::thread killer([&] {
    // Once the waiter's request is queued behind the holder, the daemon dies under it.
    Client watcher = Client::connect(kName);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto lock = watcher.query_lock("l");
      if (lock && lock->waiters == 1) break;
    }
    kill_daemon();
  });
  try {
    waiter.acquire_lock("l", {.ttl = 30s, .wait = 60s});
    ADD_FAILURE() << "acquire_lock returned although the daemon was killed";
  } catch (const ClientError& error) {
    EXPECT_EQ(error.kind(), ClientError::Kind::kConnection);
    EXPECT_NE(std::string(error.what()).find("may or may not have taken effect"), std::string::npos)
        << error.what();
  }
  killer.join();
  EXPECT_EQ(outages.disconnects, 1);

  // While the daemon is down: next() waits out its timeout, a request throws after the client's.
  EXPECT_FALSE(waiter.next(50ms));
  try {
    waiter.ping();
    ADD_FAILURE() << "ping answered with no daemon";
  } catch (const ClientError& error) {
    EXPECT_EQ(error.kind(), ClientError::Kind::kNotRunning) << error.what();
    EXPECT_NE(std::string(error.what()).find("still reconnecting"), std::string::npos)
        << error.what();
  }

  start_daemon();
  waiter.set_timeout(10s);
  waiter.ping();
  EXPECT_EQ(outages.reconnects, 1);
  EXPECT_EQ(outages.disconnects, 1);
  EXPECT_TRUE(waiter.acquire_lock("l")) << "the new daemon has no lock l";
}

// A replay too large for the connection's output bound (half of --output-hard-limit).
class ResumeClientSmallOutput : public photon::testing::DaemonFixture {
 protected:
  std::vector<std::string> serve_args(const std::filesystem::path&) override {
    return {"--output-hard-limit",    "65536", "--output-soft-limit",       "65536",
            "--replay-bytes",         "64m",   "--replay-channel-messages", "100000",
            "--replay-channel-bytes", "64m"};
  }
};

TEST_F(ResumeClientSmallOutput, AReplayTooLargeForTheOutputBoundIsRefreshNeededAtOnce) {
  Outages outages;
  Client subscriber = Client::connect(kName, reconnecting(outages));
  subscriber.subscribe("c");
  Client publisher = Client::connect(kName);
  publisher.publish("c", {{"n", 0}});
  auto first = subscriber.next(5s);
  ASSERT_TRUE(first);
  // Far more than 64 KiB while the subscriber reads nothing: it is cut off, and its replay would
  // be as large.
  const std::string pad(1024, 'p');
  for (int n = 1; n <= 400; ++n) publisher.publish("c", {{"n", n}, {"pad", pad}});

  std::vector<int> seen;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (outages.refreshes.empty() && std::chrono::steady_clock::now() < deadline) {
    if (auto message = subscriber.next(100ms)) {
      seen.push_back(message->message.at("n").to_number<int>());
    }
  }
  ASSERT_EQ(outages.refreshes, std::vector<std::string>{"c"});
  // The daemon says so on the first resume, rather than queueing a replay that would get the
  // connection cut again (the client would give up after three such cuts).
  EXPECT_EQ(outages.disconnects, 1);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()) &&
              std::adjacent_find(seen.begin(), seen.end()) == seen.end())
      << "a message came twice or out of order";
  // Live messages follow the refresh.
  publisher.publish("c", {{"n", 401}});
  std::optional<ChannelMessage> live;
  while (!live || live->message.at("n") != 401) {
    live = subscriber.next(5s);
    ASSERT_TRUE(live);
  }
  EXPECT_FALSE(live->replay);
}

TEST(ReconnectOptions, BadOptionsAreRefusedBeforeConnecting) {
  auto refused_with = [](ClientOptions options) {
    try {
      Client::connect_socket("/nonexistent/photon.sock", std::move(options));
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    } catch (const ClientError&) {
      return std::string("connected");
    }
    return std::string("accepted");
  };
  ClientOptions options;
  options.reconnect.enabled = true;
  EXPECT_NE(refused_with(options).find("on_refresh_needed is required"), std::string::npos);
  options.reconnect.on_refresh_needed = [](const std::string&) {};
  options.reconnect.initial_backoff = 0ms;
  EXPECT_NE(refused_with(options).find("initial_backoff"), std::string::npos);
  options.reconnect.initial_backoff = 100ms;
  options.reconnect.max_backoff = 50ms;
  EXPECT_NE(refused_with(options).find("max_backoff"), std::string::npos);
  options.reconnect.max_backoff = std::chrono::hours(25);
  EXPECT_NE(refused_with(options).find("max_backoff"), std::string::npos);
  options.reconnect.max_backoff = 1s;
  EXPECT_EQ(refused_with(options), "connected");  // the options pass; the socket is not there
}

}  // namespace
