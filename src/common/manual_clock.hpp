// A clock that moves only when told: the in-process tests' fake clock and the one a test build of
// photond runs on with --test-clock (docs/testing.md).
#pragma once

#include "common/clock.hpp"

#include <atomic>
#include <chrono>

namespace photon {

// Thread rule: any thread may read or move it (method threads read the clock); a move is seen
// whole by the steady or the wall reading, each on its own.
class ManualClock : public Clock {
 public:
  ManualClock(std::chrono::steady_clock::time_point steady,
              std::chrono::system_clock::time_point system)
      : steady_(steady.time_since_epoch().count()), system_(system.time_since_epoch().count()) {}

  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(steady_));
  }
  std::chrono::system_clock::time_point system() const override {
    return std::chrono::system_clock::time_point(std::chrono::system_clock::duration(system_));
  }

  // Moves both clocks forward by `by` (time passes).
  void advance(std::chrono::nanoseconds by) {
    steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(by).count();
    system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(by).count();
  }
  // Jumps the wall clock alone (an NTP step or a manual change); the steady clock is unaffected.
  void jump_wall_clock(std::chrono::nanoseconds by) {
    system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(by).count();
  }
  void set_wall_clock(std::chrono::system_clock::time_point to) {
    system_ = to.time_since_epoch().count();
  }

 private:
  std::atomic<std::chrono::steady_clock::rep> steady_;
  std::atomic<std::chrono::system_clock::rep> system_;
};

}  // namespace photon
