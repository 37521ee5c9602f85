// The replies to lock requests, written once from the lock service's values, whichever service
// (local or shared through the broker) gave them.
#pragma once

#include "locks/lock_service.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace photon::daemon {

// The reply to `lock` request `id` for `name` (never kQueued): granted, refused as held (timed
// out after `wait` when the refusal says so), refused as a renewal of `renew_token` whose lease
// ended, or the error of any other refusal.
std::string lock_reply(std::string_view id, std::string_view name, const core::LockResult& result,
                       std::chrono::milliseconds wait, std::uint64_t renew_token = 0);
// The reply to `unlock`.
std::string unlock_reply(std::string_view id, std::string_view name,
                         const core::ReleaseResult& result);
// The replies to `query_lock` and `list_locks`.
std::string query_lock_reply(std::string_view id, const core::LockQueryResult& result);
std::string list_locks_reply(std::string_view id, const core::LockListResult& result);

}  // namespace photon::daemon
