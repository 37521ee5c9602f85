// The daemon in process, on a fake clock: the idle timeout (it fires once the configured time has
// passed with no connection, lock or command, and not while a lock is held) and the shutdown a
// client asks for. Connections are in-memory peers handed to the daemon's connection handler.
#include "daemon/daemon.hpp"
#include "daemon/stored_jobs.hpp"
#include "fake_clock.hpp"
#include "fake_peer.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

namespace photon::daemon {
namespace {

using namespace std::chrono_literals;
using testing::FakePeer;

class DaemonLifecycleTest : public ::testing::Test {
 protected:
  static constexpr std::chrono::minutes kIdle{10};

  DaemonLifecycleTest() {
    char dir_template[] = "/tmp/photon-lifecycle-XXXXXX";
    root_ = ::mkdtemp(dir_template);
    ::setenv("PHOTON_DIR", root_.c_str(), 1);
    options_.photon_name = "lifecycle";
    options_.idle_timeout = kIdle;
    options_.log_to_stderr = false;
    paths_ = photon_paths(options_.photon_name);
    dir_ = std::make_unique<PrivateDir>(PrivateDir::open_owned(paths_.daemons_dir));
    daemon_ = std::make_unique<Daemon>(
        options_, clock_, *dir_, paths_, 0,
        std::make_unique<StoredJobs>(*dir_, paths_.job_db.filename().string()), std::nullopt);
    daemon_->load_jobs();
  }
  ~DaemonLifecycleTest() override {
    daemon_.reset();
    dir_.reset();
    std::filesystem::remove_all(root_);
  }

  // Sends `line` from `peer` and returns the one reply, parsed.
  boost::json::object request(FakePeer& peer, std::string_view line) {
    daemon_->connections().on_line(peer, line);
    auto replies = peer.take();
    EXPECT_EQ(replies.size(), 1u) << line;
    return replies.empty() ? boost::json::object() : boost::json::parse(replies[0]).as_object();
  }
  // Moves the clock and lets the daemon see what is due, then runs what that posted.
  void advance(std::chrono::milliseconds by) {
    clock_.advance(by);
    daemon_->check_deadlines();
    daemon_->loop().poll();
  }

  std::filesystem::path root_;
  testing::FakeClock clock_;
  DaemonOptions options_;
  PhotonPaths paths_;
  std::unique_ptr<PrivateDir> dir_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DaemonLifecycleTest, TheIdleTimeoutFiresOnceItsTimeHasPassedWithNoClient) {
  FakePeer peer;
  daemon_->connections().on_open(peer);
  EXPECT_EQ(request(peer, R"({"type":"ping","id":"p"})").at("type"), "pong");
  advance(kIdle * 2);  // a connected client keeps the daemon up however long
  EXPECT_FALSE(daemon_->stopping());
  daemon_->connections().on_close(peer);  // counting starts here
  advance(kIdle - 1ms);
  EXPECT_FALSE(daemon_->stopping());
  advance(1ms);
  EXPECT_TRUE(daemon_->stopping());
  EXPECT_TRUE(daemon_->loop().stopped());  // nothing to drain: the loop is done
}

TEST_F(DaemonLifecycleTest, AHeldLockKeepsTheDaemonUpUntilItsLeaseEnds) {
  FakePeer peer;
  daemon_->connections().on_open(peer);
  // A 25-minute lease, which outlives its client.
  const auto lock = request(
      peer, R"({"type":"lock","id":"l","lockName":"board","lockTimeout":1500000,"sessionId":"s"})");
  ASSERT_EQ(lock.at("data").at("acquired"), true);
  daemon_->connections().on_close(peer);
  advance(kIdle);
  EXPECT_FALSE(daemon_->stopping());  // held: counting again from now
  advance(kIdle);
  EXPECT_FALSE(daemon_->stopping());  // still held: counting again from now (20 min)
  advance(5min);                      // the lease ends; the count since the last check runs on
  EXPECT_FALSE(daemon_->stopping());
  advance(5min - 1ms);
  EXPECT_FALSE(daemon_->stopping());
  advance(1ms);
  EXPECT_TRUE(daemon_->stopping());
}

TEST_F(DaemonLifecycleTest, AReconnectingClientRestartsTheCount) {
  FakePeer first;
  daemon_->connections().on_open(first);
  daemon_->connections().on_close(first);
  advance(kIdle - 1min);
  FakePeer second;
  daemon_->connections().on_open(second);
  advance(2min);  // past the first count's end, but a client is connected
  daemon_->connections().on_close(second);
  advance(kIdle - 1ms);
  EXPECT_FALSE(daemon_->stopping());
  advance(1ms);
  EXPECT_TRUE(daemon_->stopping());
}

TEST_F(DaemonLifecycleTest, AShutdownRequestIsAnsweredThenTheDaemonStops) {
  FakePeer peer;
  daemon_->connections().on_open(peer);
  EXPECT_EQ(request(peer, R"({"type":"shutdown","id":"s"})"),
            boost::json::parse(R"({"type":"result","id":"s","success":true,)"
                               R"("data":{"message":"Shutting down"}})"));
  EXPECT_FALSE(daemon_->stopping());  // not inside the request's handler
  daemon_->loop().poll();
  EXPECT_TRUE(daemon_->stopping());
  daemon_->connections().on_close(peer);
  daemon_->loop().poll();
  EXPECT_TRUE(daemon_->loop().stopped());
  // Once stopping, the clock's deadlines do nothing more.
  advance(kIdle);
  EXPECT_TRUE(daemon_->stopping());
}

}  // namespace
}  // namespace photon::daemon
