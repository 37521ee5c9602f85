// The lock service of a daemon alone: its own LockTable, every answer known at once but a waiter's.
#pragma once

#include "locks/lock_service.hpp"

namespace photon::core {

// Thread rule: the event loop thread only (as its table).
class LocalLockService final : public LockService {
 public:
  // `tokens` must outlive the service.
  LocalLockService(const Clock& clock, TokenAllocator& tokens, LockLimits limits = {})
      : table_(clock, tokens, limits) {}

  void acquire(const LockRequest& request, LockDone done) override;
  void release(ConnectionId connection, std::string_view name, std::string_view holder,
               ReleaseDone done) override;
  void query(std::string_view name, QueryDone done) override;
  void list(ListDone done) override;
  void connection_closed(ConnectionId connection) override { table_.drop_connection(connection); }
  void expire_due() override { table_.expire_due(); }
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const override {
    return table_.next_deadline();
  }
  std::size_t held() const override { return table_.size(); }

 private:
  LockTable table_;
};

}  // namespace photon::core
