// The `test_clock` request of a test build's photond --test-clock: how far to move the daemon's
// clock (docs/testing.md). Never served by a daemon on the system clock.
#pragma once

#include "protocol/request.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace photon::daemon {

inline constexpr std::string_view kTestClockRequest = "test_clock";
// Ten years: far beyond any lease, timeout or cron slot, and far from overflowing a time point.
inline constexpr std::int64_t kMaxClockAdvanceMs = 10LL * 366 * 24 * 3600 * 1000;

// Time passes (both clocks move forward), or the wall clock alone jumps (forward or back).
struct ClockMove {
  std::chrono::milliseconds advance{0};
  std::optional<std::chrono::system_clock::time_point> set_wall;
};

// The move a test_clock request asks for (`advanceMs`, or `setWall` in RFC 3339, or neither to
// read the time), or the error its sender is told.
std::variant<ClockMove, std::string> parse_clock_move(const protocol::Request& request);

// An RFC 3339 date-time ("2026-03-08T01:59:00Z", "...T01:59:00.250+01:00"), or nothing.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace photon::daemon
