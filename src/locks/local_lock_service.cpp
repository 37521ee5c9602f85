// The local lock service: the table's answers handed to each call's completion.
#include "locks/local_lock_service.hpp"

namespace photon::core {

void LocalLockService::acquire(const LockRequest& request, LockDone done) {
  // The table keeps the completion only for a queued request; the connection's waiters leave
  // the table before the connection goes, so a later answer always finds its caller.
  LockResult result = table_.acquire(request, [done](const LockResult& later) { done(later); });
  if (result.outcome != LockOutcome::kQueued) done(result);
}

void LocalLockService::release(ConnectionId, std::string_view name, std::string_view holder,
                               ReleaseDone done) {
  done(table_.release(name, holder));
}

void LocalLockService::query(std::string_view name, QueryDone done) {
  done({table_.query(name), std::nullopt});
}

void LocalLockService::list(ListDone done) { done({table_.list(), std::nullopt}); }

}  // namespace photon::core
