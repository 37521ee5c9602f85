// The daemon's limits and timeouts as they are when no flag says otherwise, each written once: the
// option structs, the command line's flags (and their --help) and the docs use these numbers.
#pragma once

#include <chrono>
#include <cstddef>

namespace photon::defaults {

// Requests (docs/protocol.md, "Limits and slow consumers").
inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;  // --max-line-bytes
inline constexpr std::size_t kMaxJsonDepth = 64;                    // --max-json-depth
// The largest --max-json-depth: a message any daemon may have accepted nests this deep at most, and
// a line carrying it one more.
inline constexpr std::size_t kMaxJsonDepthLimit = 10'000;
inline constexpr std::size_t kMaxConnections = 10'000;            // --max-connections
inline constexpr std::size_t kMaxSubscriptions = 4096;            // --max-subscriptions
inline constexpr std::size_t kMaxTotalSubscriptions = 1'000'000;  // --max-total-subscriptions
// The replay window: in all channels, then per channel (photon's own: 500 events, 5 minutes).
inline constexpr std::size_t kReplayMessages = 10'000;              // --replay-messages
inline constexpr std::size_t kReplayBytes = std::size_t{16} << 20;  // --replay-bytes
inline constexpr std::size_t kReplayChannelMessages = 500;          // --replay-channel-messages
inline constexpr std::size_t kReplayChannelBytes = std::size_t{4} << 20;  // --replay-channel-bytes
inline constexpr std::chrono::minutes kReplayAge{5};                      // --replay-age
inline constexpr std::size_t kMaxLocks = 10'000;                          // --max-locks
// Output queued to one connection (Redis's client-output-buffer-limit pubsub 32mb 8mb 60).
inline constexpr std::size_t kOutputHardBytes = std::size_t{32} << 20;  // --output-hard-limit
inline constexpr std::size_t kOutputSoftBytes = std::size_t{8} << 20;   // --output-soft-limit
inline constexpr std::chrono::seconds kOutputSoftTime{60};              // --output-soft-seconds

// Methods and jobs.
inline constexpr std::chrono::milliseconds kPromptTimeout = std::chrono::minutes(5);
inline constexpr std::chrono::seconds kMissedAfter{60};  // --missed-after
inline constexpr std::chrono::milliseconds kSessionTimeout = std::chrono::minutes(10);
inline constexpr std::size_t kMethodThreads = 8;  // --method-threads

// Webhooks.
inline constexpr std::size_t kWebhookMaxBody = std::size_t{1} << 20;  // --webhook-max-body

}  // namespace photon::defaults
