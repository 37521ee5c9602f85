// A real photond for one integration test: started in a private $PHOTON_DIR, stopped with SIGTERM.
// The test target defines PHOTOND_PATH.
#pragma once

#include "photon/client.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace photon::testing {

class DaemonFixture : public ::testing::Test {
 protected:
  static constexpr const char* kName = "clienttest";

  void SetUp() override {
    char dir_template[] = "/tmp/photon-client-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    ::setenv("PHOTON_DIR", dir_.c_str(), 1);
    start_daemon();
  }

  // Starts photond in dir_ and waits until it answers a ping (a test may restart it: a new epoch).
  void start_daemon() {
    using namespace std::chrono_literals;
    std::vector<std::string> args{PHOTOND_PATH, "serve", kName, "--log-level", "warn"};
    for (std::string& arg : serve_args(dir_)) args.push_back(std::move(arg));
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::execv(PHOTOND_PATH, argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        Client::connect(kName).ping();
        return;
      } catch (const ClientError&) {
        std::this_thread::sleep_for(10ms);
      }
    }
    FAIL() << "photond did not answer within 20 s";
  }

  // SIGTERM, and waits for a clean exit (it removes its socket before exiting).
  void stop_daemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // in case a test stopped it
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }

  // More arguments for `photond serve` (a fixture may write files into `dir`, the PHOTON_DIR,
  // first: a manifest, its scripts).
  virtual std::vector<std::string> serve_args(const std::filesystem::path& dir) {
    (void)dir;
    return {};
  }

  void TearDown() override {
    stop_daemon();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

}  // namespace photon::testing
