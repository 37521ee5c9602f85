// libphoton's client against the real photond binary over its real socket.
#include "photon/client.hpp"
#include "daemon_fixture.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace {

using namespace std::chrono_literals;
using photon::Client;
using photon::ClientError;
using photon::testing::DaemonFixture;

TEST_F(DaemonFixture, PublishReachesSubscriberThroughNext) {
  Client subscriber = Client::connect("clienttest");
  subscriber.subscribe("board:*");
  Client publisher = Client::connect("clienttest");
  EXPECT_EQ(publisher.publish("board:a", {{"event", "task-moved"}}), 1u);
  auto message = subscriber.next(5s);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->channel, "board:a");
  EXPECT_EQ(message->message, (boost::json::value{{"event", "task-moved"}}));
  EXPECT_TRUE(message->id.starts_with("ch_"));
  EXPECT_FALSE(subscriber.next(50ms));
}

TEST_F(DaemonFixture, MessagesArrivingDuringARequestAreKeptInOrder) {
  Client subscriber = Client::connect("clienttest");
  subscriber.subscribe("c");
  Client publisher = Client::connect("clienttest");
  for (int i = 0; i < 5; ++i) publisher.publish("c", i);
  subscriber.ping();  // reads past the five messages to find its pong
  for (int i = 0; i < 5; ++i) {
    auto message = subscriber.next(1s);
    ASSERT_TRUE(message);
    EXPECT_EQ(message->message, i);
  }
}

TEST_F(DaemonFixture, HandlersRunFromPoll) {
  Client subscriber = Client::connect("clienttest");
  std::vector<std::string> seen;
  subscriber.subscribe(
      "jobs:*", [&](const photon::ChannelMessage& message) { seen.push_back(message.channel); });
  subscriber.subscribe("other");
  Client publisher = Client::connect("clienttest");
  publisher.publish("jobs:a", nullptr);
  publisher.publish("other", 1);
  publisher.publish("jobs:b", nullptr);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (seen.size() < 2 && std::chrono::steady_clock::now() < deadline) subscriber.poll(100ms);
  EXPECT_EQ(seen, (std::vector<std::string>{"jobs:a", "jobs:b"}));
  auto unhandled = subscriber.next(1s);
  ASSERT_TRUE(unhandled);
  EXPECT_EQ(unhandled->channel, "other");
}

TEST_F(DaemonFixture, UnsubscribeStopsDelivery) {
  Client subscriber = Client::connect("clienttest");
  subscriber.subscribe("c");
  subscriber.unsubscribe("c");
  EXPECT_EQ(Client::connect("clienttest").publish("c", 1), 0u);
}

TEST_F(DaemonFixture, StatusAndRefusals) {
  Client client = Client::connect("clienttest");
  client.subscribe("x");
  auto status = client.status();
  EXPECT_EQ(status.at("name"), "clienttest");
  EXPECT_EQ(status.at("pid").to_number<pid_t>(), pid_);
  try {
    client.publish("bad*", 1);
    FAIL() << "publish to a pattern was accepted";
  } catch (const ClientError& error) {
    EXPECT_EQ(error.kind(), ClientError::Kind::kRefused);
    EXPECT_STREQ(error.what(), "\"channel\" of a publish may not contain '*'");
  }
  client.ping();  // the connection survived the refusal
}

TEST_F(DaemonFixture, ShutdownStopsTheDaemon) {
  Client::connect("clienttest").shutdown();
  int status = 0;
  ASSERT_EQ(::waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "daemons" / "clienttest.sock"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "daemons" / "clienttest.pid"));
}

TEST(Client, NotRunningIsItsOwnKind) {
  ::setenv("PHOTON_DIR", "/tmp/photon-client-nonexistent", 1);
  try {
    Client::connect("nobody");
    FAIL() << "connected to nothing";
  } catch (const ClientError& error) {
    EXPECT_EQ(error.kind(), ClientError::Kind::kNotRunning);
  }
  EXPECT_THROW(Client::connect("../etc"), std::invalid_argument);
}

TEST(Client, SessionIdFollowsTheSpec) {
  ::unsetenv("PHOTON_SESSION_ID");
  const std::string prefix = "cli-" + std::to_string(::getpid()) + "-";
  const std::string id = photon::default_session_id();
  ASSERT_EQ(id.size(), prefix.size() + 8) << id;
  EXPECT_TRUE(id.starts_with(prefix)) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", prefix.size()), std::string::npos) << id;
  ::setenv("PHOTON_SESSION_ID", "agent-7", 1);
  EXPECT_EQ(photon::default_session_id(), "agent-7");
  ::unsetenv("PHOTON_SESSION_ID");
}

}  // namespace
