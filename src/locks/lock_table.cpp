// The lock table: acquisition, extension, release, FIFO hand-over to waiters, exact expiry.
#include "locks/lock_table.hpp"

#include <algorithm>

namespace photon::core {
namespace {

// A lock refused because no fencing token could be issued for it.
LockResult token_refused(const Refused& refused) {
  if (refused.code == RefusalCode::kTokensExhausted) {
    return {LockOutcome::kRefused, {}, LockRefusal::kTokensExhausted, 0, {}};
  }
  return {LockOutcome::kRefused,
          {},
          LockRefusal::kTokenNotIssued,
          0,
          refused.values.empty() ? std::string() : refused.values.front()};
}

}  // namespace

TokenAllocator::Next TokenAllocator::next() {
  if (last_ >= kMaxFencingToken) {
    return {0, Refused{RefusalCode::kTokensExhausted, {}}};
  }
  if (last_ >= reserved_) {
    const std::uint64_t mark = std::min(last_ + block_, kMaxFencingToken);
    if (auto error = persist_(mark)) {
      return {0, Refused{RefusalCode::kTokenNotIssued, {std::move(*error)}}};
    }
    reserved_ = mark;
  }
  return {++last_, std::nullopt};
}

LockTable::LockTable(const Clock& clock, TokenAllocator& tokens, LockLimits limits)
    : clock_(clock), tokens_(tokens), limits_(limits) {}

LockView LockTable::view(const std::string& name, const Lock& lock) const {
  return LockView{
      name, lock.holder, lock.acquired_at, lock.expires_at, lock.token, lock.waiters.size(),
  };
}

void LockTable::set_expiry(const std::string& name, Lock& lock, SteadyTime expires,
                           const Instant& at) {
  expiries_.erase({lock.expires, name});
  lock.expires = expires;
  lock.expires_at = at.system + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                    expires - at.steady);
  expiries_.emplace(expires, name);
}

void LockTable::bind(const std::string& name, Lock& lock, std::optional<ConnectionId> connection) {
  if (lock.bound_to) {
    auto owner = bound_.find(*lock.bound_to);
    if (owner != bound_.end()) {
      owner->second.erase(name);
      if (owner->second.empty()) bound_.erase(owner);
    }
  }
  lock.bound_to = connection;
  if (connection) bound_[*connection].insert(name);
}

LockResult LockTable::acquire(const LockRequest& request, LockWaitDone on_done) {
  expire_due();
  auto it = locks_.find(request.name);
  if (request.renew_token != 0) {
    const bool still_held = it != locks_.end() && it->second.holder == request.holder &&
                            it->second.token == request.renew_token;
    if (!still_held) {
      LockView now_held = it == locks_.end() ? LockView{.name = std::string(request.name)}
                                             : view(it->first, it->second);
      return {LockOutcome::kRefused, std::move(now_held), LockRefusal::kLeaseEnded, 0, {}};
    }
  }
  if (it == locks_.end()) {
    if (locks_.size() >= limits_.max_locks) {
      return {LockOutcome::kRefused, {}, LockRefusal::kTooManyLocks, limits_.max_locks, {}};
    }
    TokenAllocator::Next token = tokens_.next();
    if (token.error) {
      return token_refused(*token.error);
    }
    // The lease starts after the token is issued: issuing may have waited for the disk.
    const Instant at = now();
    it = locks_.emplace(std::string(request.name), Lock{}).first;
    Lock& lock = it->second;
    lock.holder = std::string(request.holder);
    lock.acquired_at = at.system;
    lock.token = token.token;
    set_expiry(it->first, lock, at.steady + request.lease, at);
    if (request.release_on_disconnect) bind(it->first, lock, request.connection);
    return {LockOutcome::kAcquired, view(it->first, lock)};
  }

  const Instant at = now();
  Lock& lock = it->second;
  if (lock.holder == request.holder) {
    set_expiry(it->first, lock, at.steady + request.lease, at);
    if (request.release_on_disconnect) bind(it->first, lock, request.connection);
    return {LockOutcome::kExtended, view(it->first, lock)};
  }
  if (request.wait.count() <= 0) {
    return {LockOutcome::kRefused, view(it->first, lock), LockRefusal::kHeld, 0, {}};
  }

  auto waiting = connection_waiters_.find(request.connection);
  const std::size_t of_connection =
      waiting == connection_waiters_.end() ? 0 : waiting->second.size();
  if (of_connection >= limits_.max_waiters_per_connection ||
      waiters_.size() >= limits_.max_waiters) {
    const bool per_connection = of_connection >= limits_.max_waiters_per_connection;
    return {
        LockOutcome::kRefused,
        view(it->first, lock),
        per_connection ? LockRefusal::kTooManyWaitersOnConnection : LockRefusal::kTooManyWaiters,
        per_connection ? limits_.max_waiters_per_connection : limits_.max_waiters,
        {}};
  }
  const std::uint64_t id = next_waiter_id_++;
  Waiter waiter{id,
                std::string(request.holder),
                request.lease,
                request.release_on_disconnect,
                request.connection,
                at.steady + request.wait,
                std::move(on_done)};
  wait_deadlines_.emplace(waiter.deadline, id);
  waiters_.emplace(id, WaiterIndex{it->first, request.connection});
  connection_waiters_[request.connection].insert(id);
  lock.waiting_holders[waiter.holder].insert(id);
  lock.waiters.emplace(id, std::move(waiter));
  return {LockOutcome::kQueued, view(it->first, lock)};
}

LockTable::Waiter LockTable::remove_waiter(Lock& lock, std::uint64_t waiter_id) {
  auto node = lock.waiters.extract(waiter_id);
  Waiter waiter = std::move(node.mapped());
  wait_deadlines_.erase({waiter.deadline, waiter.id});
  waiters_.erase(waiter.id);
  if (auto of_connection = connection_waiters_.find(waiter.connection);
      of_connection != connection_waiters_.end()) {
    of_connection->second.erase(waiter.id);
    if (of_connection->second.empty()) connection_waiters_.erase(of_connection);
  }
  if (auto of_holder = lock.waiting_holders.find(waiter.holder);
      of_holder != lock.waiting_holders.end()) {
    of_holder->second.erase(waiter.id);
    if (of_holder->second.empty()) lock.waiting_holders.erase(of_holder);
  }
  return waiter;
}

ReleaseResult LockTable::release(std::string_view name, std::string_view holder) {
  expire_due();
  auto it = locks_.find(name);
  if (it == locks_.end()) return {ReleaseOutcome::kNotHeld, {}, {}};
  if (it->second.holder != holder) return {ReleaseOutcome::kHeldByOther, it->second.holder, {}};
  free_lock(it);
  return {ReleaseOutcome::kReleased, {}, {}};
}

void LockTable::free_lock(LockMap::iterator it) {
  const std::string& name = it->first;
  Lock& lock = it->second;
  expiries_.erase({lock.expires, name});
  bind(name, lock, std::nullopt);
  while (!lock.waiters.empty()) {
    Waiter waiter = remove_waiter(lock, lock.waiters.begin()->first);
    TokenAllocator::Next token = tokens_.next();
    if (token.error) {
      waiter.on_done(token_refused(*token.error));
      continue;
    }
    const Instant at = now();
    lock.holder = std::move(waiter.holder);
    lock.acquired_at = at.system;
    lock.token = token.token;
    set_expiry(name, lock, at.steady + waiter.lease, at);
    if (waiter.release_on_disconnect) bind(name, lock, waiter.connection);
    waiter.on_done({LockOutcome::kAcquired, view(name, lock)});
    // The new holder's other queued requests are now extensions, answered at once.
    if (auto same = lock.waiting_holders.find(lock.holder); same != lock.waiting_holders.end()) {
      const std::set<std::uint64_t> ids = same->second;
      for (std::uint64_t id : ids) {
        Waiter extension = remove_waiter(lock, id);
        set_expiry(name, lock, std::max(lock.expires, at.steady + extension.lease), at);
        if (extension.release_on_disconnect) bind(name, lock, extension.connection);
        extension.on_done({LockOutcome::kExtended, view(name, lock)});
      }
    }
    return;
  }
  locks_.erase(it);
}

void LockTable::time_out_waiter(std::uint64_t waiter_id) {
  auto it = locks_.find(waiters_.at(waiter_id).lock_name);
  Waiter timed_out = remove_waiter(it->second, waiter_id);
  timed_out.on_done(
      {LockOutcome::kRefused, view(it->first, it->second), LockRefusal::kWaitTimedOut, 0, {}});
}

void LockTable::expire_due() {
  const SteadyTime current = clock_.steady();
  // In deadline order, as a loop that woke at each deadline would have handled them (a loop that
  // stalled past several must not grant a waiter whose wait had already ended). At one instant
  // the lease ends first: a waiter whose wait ends at the very instant the lease does gets the
  // lock.
  for (;;) {
    const bool lease_due = !expiries_.empty() && expiries_.begin()->first <= current;
    const bool wait_due = !wait_deadlines_.empty() && wait_deadlines_.begin()->first <= current;
    if (lease_due && (!wait_due || expiries_.begin()->first <= wait_deadlines_.begin()->first)) {
      free_lock(locks_.find(expiries_.begin()->second));
    } else if (wait_due) {
      time_out_waiter(wait_deadlines_.begin()->second);
    } else {
      break;
    }
  }
}

std::optional<std::chrono::steady_clock::time_point> LockTable::next_deadline() const {
  std::optional<SteadyTime> next;
  if (!expiries_.empty()) next = expiries_.begin()->first;
  if (!wait_deadlines_.empty() && (!next || wait_deadlines_.begin()->first < *next)) {
    next = wait_deadlines_.begin()->first;
  }
  return next;
}

std::optional<LockView> LockTable::query(std::string_view name) {
  expire_due();
  auto it = locks_.find(name);
  if (it == locks_.end()) return std::nullopt;
  return view(it->first, it->second);
}

std::vector<LockView> LockTable::list() {
  expire_due();
  std::vector<LockView> views;
  views.reserve(locks_.size());
  for (const auto& [name, lock] : locks_) views.push_back(view(name, lock));
  std::sort(views.begin(), views.end(),
            [](const LockView& a, const LockView& b) { return a.name < b.name; });
  return views;
}

void LockTable::drop_connection(ConnectionId connection) {
  expire_due();
  if (auto waiting = connection_waiters_.find(connection); waiting != connection_waiters_.end()) {
    const std::set<std::uint64_t> ids = waiting->second;
    for (std::uint64_t id : ids) remove_waiter(locks_.find(waiters_.at(id).lock_name)->second, id);
  }
  auto bound = bound_.find(connection);
  if (bound == bound_.end()) return;
  const std::set<std::string> names = bound->second;
  for (const std::string& name : names) {
    auto it = locks_.find(name);
    if (it != locks_.end() && it->second.bound_to == connection) free_lock(it);
  }
}

}  // namespace photon::core
