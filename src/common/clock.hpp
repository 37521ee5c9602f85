// The clock services read, injected so tests can move time by hand (see
// tests/support/fake_clock.hpp).
#pragma once

#include <chrono>

namespace photon {

// steady() orders events and measures durations (immune to wall-clock jumps); system() is for
// times shown on the wire (epoch milliseconds).
// Thread rule: implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point steady() const = 0;
  virtual std::chrono::system_clock::time_point system() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point system() const override {
    return std::chrono::system_clock::now();
  }
};

inline long long epoch_millis(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

}  // namespace photon
