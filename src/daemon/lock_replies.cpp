// Lock replies in the shapes of docs/locks.md.
#include "daemon/lock_replies.hpp"

#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

namespace photon::daemon {
namespace {

using core::LockRefusal;

std::string held_by(std::string_view name, std::string_view holder) {
  return protocol::fill_message(protocol::messages::kLockHeldBy, {name, holder});
}

std::string unavailable(std::string_view why) {
  return protocol::describe({RefusalCode::kLockServiceUnavailable, {std::string(why)}});
}

boost::json::object lock_json(const core::LockView& lock) {
  return {{"name", lock.name},
          {"holder", lock.holder},
          {"acquiredAt", epoch_millis(lock.acquired_at)},
          {"expiresAt", epoch_millis(lock.expires_at)},
          {"token", lock.token},
          {"waiters", lock.waiters}};
}

// The sentence of a refusal that is an error rather than a "not acquired" result.
std::string refusal_message(const core::LockResult& result) {
  const std::string limit = std::to_string(result.limit);
  switch (result.refusal) {
    case LockRefusal::kTooManyLocks:
      return protocol::describe({RefusalCode::kTooManyLocks, {limit}});
    case LockRefusal::kTooManyWaiters:
      return protocol::describe({RefusalCode::kTooManyLockWaiters, {limit}});
    case LockRefusal::kTooManyWaitersOnConnection:
      return protocol::describe({RefusalCode::kTooManyLockWaitersOnConnection, {limit}});
    case LockRefusal::kTokenNotIssued:
      return protocol::describe({RefusalCode::kTokenNotIssued, {result.detail}});
    case LockRefusal::kTokensExhausted:
      return protocol::describe({RefusalCode::kTokensExhausted, {}});
    case LockRefusal::kUnavailable:
      return unavailable(result.detail);
    case LockRefusal::kNone:
    case LockRefusal::kHeld:
    case LockRefusal::kWaitTimedOut:
    case LockRefusal::kLeaseEnded:
      break;
  }
  return std::string(protocol::messages::kInternalError);
}

}  // namespace

std::string lock_reply(std::string_view id, std::string_view name, const core::LockResult& result,
                       std::chrono::milliseconds wait, std::uint64_t renew_token) {
  using core::LockOutcome;
  if (result.outcome == LockOutcome::kAcquired || result.outcome == LockOutcome::kExtended) {
    boost::json::object data{{"acquired", true},
                             {"lockName", name},
                             {"holder", result.lock.holder},
                             {"acquiredAt", epoch_millis(result.lock.acquired_at)},
                             {"expiresAt", epoch_millis(result.lock.expires_at)},
                             {"token", result.lock.token}};
    if (result.outcome == LockOutcome::kExtended) data["extended"] = true;
    return protocol::result_line(id, true, data);
  }
  if (result.refusal == LockRefusal::kHeld || result.refusal == LockRefusal::kWaitTimedOut) {
    std::string reason = held_by(name, result.lock.holder);
    if (result.refusal == LockRefusal::kWaitTimedOut) {
      reason = protocol::fill_message(protocol::messages::kLockWaitTimedOut,
                                      {std::to_string(wait.count()), reason});
    }
    return protocol::result_line(
        id, false,
        boost::json::object{{"acquired", false},
                            {"lockName", name},
                            {"holder", result.lock.holder},
                            {"expiresAt", epoch_millis(result.lock.expires_at)},
                            {"reason", reason}});
  }
  if (result.refusal == LockRefusal::kLeaseEnded) {
    // Not taken: the holder, if any, is whoever holds the lock now (another session, or this one
    // under a newer token).
    boost::json::object data{
        {"acquired", false},
        {"lockName", name},
        {"holder", result.lock.holder},
        {"reason", protocol::fill_message(protocol::messages::kLockLeaseEnded,
                                          {name, std::to_string(renew_token)})}};
    if (!result.lock.holder.empty()) data["expiresAt"] = epoch_millis(result.lock.expires_at);
    return protocol::result_line(id, false, data);
  }
  return protocol::error_line(id, refusal_message(result));
}

std::string unlock_reply(std::string_view id, std::string_view name,
                         const core::ReleaseResult& result) {
  switch (result.outcome) {
    case core::ReleaseOutcome::kUnavailable:
      return protocol::error_line(id, unavailable(result.detail));
    case core::ReleaseOutcome::kHeldByOther:
      return protocol::result_line(
          id, false,
          boost::json::object{
              {"released", false}, {"lockName", name}, {"reason", held_by(name, result.holder)}});
    case core::ReleaseOutcome::kReleased:
    case core::ReleaseOutcome::kNotHeld:
      break;
  }
  return protocol::result_line(id, true,
                               boost::json::object{{"released", true}, {"lockName", name}});
}

std::string query_lock_reply(std::string_view id, const core::LockQueryResult& result) {
  if (result.unavailable) return protocol::error_line(id, unavailable(*result.unavailable));
  boost::json::value found =
      result.lock ? boost::json::value(lock_json(*result.lock)) : boost::json::value(nullptr);
  return protocol::result_line(id, true, boost::json::object{{"lock", std::move(found)}});
}

std::string list_locks_reply(std::string_view id, const core::LockListResult& result) {
  if (result.unavailable) return protocol::error_line(id, unavailable(*result.unavailable));
  boost::json::array locks;
  for (const core::LockView& lock : result.locks) locks.push_back(lock_json(lock));
  return protocol::result_line(id, true, boost::json::object{{"locks", std::move(locks)}});
}

}  // namespace photon::daemon
