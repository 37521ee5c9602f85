// A clock that moves only when a test says so, for exact timing tests of services.
#pragma once

#include "common/manual_clock.hpp"

namespace photon::testing {

// Starts at fixed, recognisable times, so transcripts recorded on it are reproducible.
class FakeClock final : public ManualClock {
 public:
  FakeClock()
      : ManualClock(
            std::chrono::steady_clock::time_point(std::chrono::hours(1000)),
            std::chrono::system_clock::time_point(std::chrono::milliseconds(1'764'000'000'000))) {}
};

}  // namespace photon::testing
