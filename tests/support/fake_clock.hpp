// A clock that moves only when a test says so, for exact timing tests of services.
#pragma once

#include "common/clock.hpp"

namespace photon::testing {

class FakeClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady() const override { return steady_; }
  std::chrono::system_clock::time_point system() const override { return system_; }

  // Moves both clocks forward by `by`.
  void advance(std::chrono::nanoseconds by) {
    steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(by);
    system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(by);
  }
  // Jumps the wall clock alone (an NTP step or a manual change); the steady clock is unaffected.
  void jump_wall_clock(std::chrono::nanoseconds by) {
    system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(by);
  }

 private:
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
  std::chrono::system_clock::time_point system_{std::chrono::milliseconds(1'764'000'000'000)};
};

}  // namespace photon::testing
