// Unit tests of the lock table on a fake clock: exact expiry, extension, holders, FIFO waiters,
// release on disconnect, and fencing tokens.
#include "locks/lock_table.hpp"

#include "fake_clock.hpp"

#include <gtest/gtest.h>

namespace photon::core {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;

class LockTableTest : public ::testing::Test {
 protected:
  LockRequest request(std::string_view name, std::string_view holder,
                      milliseconds lease = milliseconds(1000), milliseconds wait = milliseconds(0),
                      ConnectionId connection = 1) {
    return {name, holder, lease, wait, false, connection};
  }

  // A waiting acquire whose eventual result lands in `out`.
  LockResult wait_for(const LockRequest& lock_request, std::optional<LockResult>& out) {
    return table_.acquire(lock_request, [&out](const LockResult& result) { out = result; });
  }

  FakeClock clock_;
  std::vector<std::uint64_t> persisted_;
  TokenAllocator tokens_{0,
                         [this](std::uint64_t mark) {
                           persisted_.push_back(mark);
                           return std::optional<std::string>();
                         },
                         10};
  LockTable table_{clock_, tokens_};
};

TEST_F(LockTableTest, AcquireThenRefuseAnotherHolder) {
  LockResult first = table_.acquire(request("w", "A"), {});
  ASSERT_EQ(first.outcome, LockOutcome::kAcquired);
  EXPECT_EQ(first.lock.holder, "A");
  EXPECT_EQ(first.lock.token, 1u);
  EXPECT_EQ(first.lock.expires_at - first.lock.acquired_at, milliseconds(1000));

  LockResult second = table_.acquire(request("w", "B"), {});
  EXPECT_EQ(second.outcome, LockOutcome::kRefused);
  EXPECT_EQ(second.refusal, LockRefusal::kHeld);
  EXPECT_EQ(second.lock.holder, "A");  // the holder that refused B
}

TEST_F(LockTableTest, ExpiryIsExactToTheInstant) {
  table_.acquire(request("w", "A", milliseconds(300)), {});
  clock_.advance(milliseconds(299) + std::chrono::microseconds(999));
  EXPECT_TRUE(table_.query("w"));
  EXPECT_EQ(table_.acquire(request("w", "B"), {}).outcome, LockOutcome::kRefused);
  clock_.advance(std::chrono::microseconds(1));
  EXPECT_FALSE(table_.query("w"));
  EXPECT_TRUE(table_.list().empty());
  EXPECT_EQ(table_.acquire(request("w", "B"), {}).outcome, LockOutcome::kAcquired);
}

TEST_F(LockTableTest, ReentrantLockExtendsKeepingToken) {
  LockResult first = table_.acquire(request("w", "A", milliseconds(100)), {});
  clock_.advance(milliseconds(80));
  LockResult again = table_.acquire(request("w", "A", milliseconds(100)), {});
  EXPECT_EQ(again.outcome, LockOutcome::kExtended);
  EXPECT_EQ(again.lock.token, first.lock.token);
  EXPECT_EQ(again.lock.acquired_at, first.lock.acquired_at);
  clock_.advance(milliseconds(99));
  EXPECT_TRUE(table_.query("w"));  // 179 ms after the first lock, 99 after the extension
  clock_.advance(milliseconds(1));
  EXPECT_FALSE(table_.query("w"));
}

TEST_F(LockTableTest, ARenewalExtendsOnlyTheLeaseUnderItsToken) {
  const LockResult first = table_.acquire(request("w", "A", milliseconds(100)), {});
  LockRequest renewal = request("w", "A", milliseconds(100));
  renewal.renew_token = first.lock.token;
  clock_.advance(milliseconds(99));
  const LockResult renewed = table_.acquire(renewal, {});
  EXPECT_EQ(renewed.outcome, LockOutcome::kExtended);
  EXPECT_EQ(renewed.lock.token, first.lock.token);

  // The lease ends: the renewal neither takes the free lock nor gets a new token.
  clock_.advance(milliseconds(100));
  ASSERT_FALSE(table_.query("w"));
  const LockResult too_late = table_.acquire(renewal, {});
  EXPECT_EQ(too_late.outcome, LockOutcome::kRefused);
  EXPECT_EQ(too_late.refusal, LockRefusal::kLeaseEnded);
  EXPECT_EQ(too_late.lock.name, "w");
  EXPECT_EQ(too_late.lock.holder, "");
  EXPECT_FALSE(table_.query("w"));

  // The same holder, lock taken again under a newer token: the old token's renewal is refused and
  // the newer lease is left as it was.
  const LockResult retaken = table_.acquire(request("w", "A", milliseconds(100)), {});
  ASSERT_EQ(retaken.outcome, LockOutcome::kAcquired);
  ASSERT_GT(retaken.lock.token, first.lock.token);
  const LockResult stale = table_.acquire(renewal, {});
  EXPECT_EQ(stale.refusal, LockRefusal::kLeaseEnded);
  EXPECT_EQ(stale.lock.token, retaken.lock.token);
  EXPECT_EQ(table_.query("w")->expires_at, retaken.lock.expires_at);

  // Another holder's lock: refused as a lease that ended, naming who holds it.
  ASSERT_EQ(table_.release("w", "A").outcome, ReleaseOutcome::kReleased);
  ASSERT_EQ(table_.acquire(request("w", "B"), {}).outcome, LockOutcome::kAcquired);
  const LockResult taken_by_other = table_.acquire(renewal, {});
  EXPECT_EQ(taken_by_other.refusal, LockRefusal::kLeaseEnded);
  EXPECT_EQ(taken_by_other.lock.holder, "B");
}

TEST_F(LockTableTest, OnlyTheHolderReleases) {
  table_.acquire(request("w", "A"), {});
  ReleaseResult refused = table_.release("w", "B");
  EXPECT_EQ(refused.outcome, ReleaseOutcome::kHeldByOther);
  EXPECT_EQ(refused.holder, "A");
  EXPECT_EQ(table_.release("w", "A").outcome, ReleaseOutcome::kReleased);
  EXPECT_EQ(table_.release("w", "A").outcome, ReleaseOutcome::kNotHeld);
}

TEST_F(LockTableTest, WallClockJumpsDoNotMoveLeases) {
  table_.acquire(request("w", "A", milliseconds(1000)), {});
  clock_.jump_wall_clock(std::chrono::hours(2));
  EXPECT_TRUE(table_.query("w"));
  clock_.jump_wall_clock(-std::chrono::hours(4));
  clock_.advance(milliseconds(1000));
  EXPECT_FALSE(table_.query("w"));
}

TEST_F(LockTableTest, ALeaseShowsOneExpiryInstantWhateverTheWallClockDoes) {
  const LockResult granted = table_.acquire(request("w", "A", milliseconds(1000)), {});
  ASSERT_EQ(granted.outcome, LockOutcome::kAcquired);
  clock_.advance(milliseconds(300));
  clock_.jump_wall_clock(std::chrono::hours(2));
  const std::optional<LockView> later = table_.query("w");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->expires_at, granted.lock.expires_at);
  EXPECT_EQ(later->acquired_at, granted.lock.acquired_at);
  EXPECT_EQ(table_.list().at(0).expires_at, granted.lock.expires_at);
  // An extension sets a new expiry from the clocks as they are then.
  const LockResult extended = table_.acquire(request("w", "A", milliseconds(1000)), {});
  EXPECT_EQ(extended.lock.expires_at, clock_.system() + milliseconds(1000));
}

TEST_F(LockTableTest, WaitersAreServedFirstComeFirstServed) {
  table_.acquire(request("w", "A"), {});
  std::optional<LockResult> b, c, d;
  EXPECT_EQ(wait_for(request("w", "B", milliseconds(1000), milliseconds(5000), 2), b).outcome,
            LockOutcome::kQueued);
  wait_for(request("w", "C", milliseconds(1000), milliseconds(5000), 3), c);
  wait_for(request("w", "D", milliseconds(1000), milliseconds(5000), 4), d);
  EXPECT_EQ(table_.query("w")->waiters, 3u);

  table_.release("w", "A");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->outcome, LockOutcome::kAcquired);
  EXPECT_EQ(b->lock.holder, "B");
  EXPECT_FALSE(c);
  clock_.advance(milliseconds(1000));  // B's lease ends: C is next
  table_.expire_due();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->lock.holder, "C");
  EXPECT_GT(c->lock.token, b->lock.token);
  EXPECT_FALSE(d);
}

TEST_F(LockTableTest, WaitRunsOutWithARefusal) {
  table_.acquire(request("w", "A", milliseconds(10'000)), {});
  std::optional<LockResult> b;
  wait_for(request("w", "B", milliseconds(1000), milliseconds(500), 2), b);
  EXPECT_EQ(table_.next_deadline(), clock_.steady() + milliseconds(500));
  clock_.advance(milliseconds(499));
  table_.expire_due();
  EXPECT_FALSE(b);
  clock_.advance(milliseconds(1));
  table_.expire_due();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->outcome, LockOutcome::kRefused);
  EXPECT_EQ(b->refusal, LockRefusal::kWaitTimedOut);
  EXPECT_EQ(b->lock.holder, "A");
  EXPECT_EQ(table_.query("w")->waiters, 0u);
}

TEST_F(LockTableTest, LeaseEndingAtTheWaitDeadlineGoesToTheWaiter) {
  table_.acquire(request("w", "A", milliseconds(500)), {});
  std::optional<LockResult> b;
  wait_for(request("w", "B", milliseconds(1000), milliseconds(500), 2), b);
  clock_.advance(milliseconds(500));
  table_.expire_due();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->outcome, LockOutcome::kAcquired);
}

TEST_F(LockTableTest, ALoopThatStalledPastBothDeadlinesHandlesThemInOrder) {
  table_.acquire(request("w", "A", milliseconds(100)), {});
  std::optional<LockResult> early;  // its wait ends at 50 ms, before the lease
  std::optional<LockResult> late;   // its wait ends at 150 ms, after it
  ASSERT_EQ(wait_for(request("w", "B", milliseconds(1000), milliseconds(50), 2), early).outcome,
            LockOutcome::kQueued);
  ASSERT_EQ(wait_for(request("w", "C", milliseconds(1000), milliseconds(150), 3), late).outcome,
            LockOutcome::kQueued);
  clock_.advance(milliseconds(200));  // no expire_due at 50, 100 or 150 ms
  table_.expire_due();
  ASSERT_TRUE(early && late);
  EXPECT_EQ(early->outcome, LockOutcome::kRefused);
  EXPECT_EQ(early->refusal, LockRefusal::kWaitTimedOut);
  EXPECT_EQ(late->outcome, LockOutcome::kAcquired);
  EXPECT_EQ(table_.query("w")->holder, "C");
}

TEST_F(LockTableTest, DisconnectedWaiterLeavesTheQueueSilently) {
  table_.acquire(request("w", "A"), {});
  std::optional<LockResult> b, c;
  wait_for(request("w", "B", milliseconds(1000), milliseconds(5000), 2), b);
  wait_for(request("w", "C", milliseconds(1000), milliseconds(5000), 3), c);
  table_.drop_connection(2);
  table_.release("w", "A");
  EXPECT_FALSE(b);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->lock.holder, "C");
}

TEST_F(LockTableTest, ReleaseOnDisconnectEndsOnlyBoundLocks) {
  LockRequest bound = request("bound", "A", milliseconds(60'000), milliseconds(0), 7);
  bound.release_on_disconnect = true;
  table_.acquire(bound, {});
  table_.acquire(request("plain", "A", milliseconds(60'000), milliseconds(0), 7), {});
  table_.drop_connection(7);
  EXPECT_FALSE(table_.query("bound"));
  EXPECT_TRUE(table_.query("plain"));
}

TEST_F(LockTableTest, AllQueuedRequestsOfTheNewHolderBecomeExtensions) {
  // Regression: with the queue [B, C, B], B's second request timed out "held by B".
  table_.acquire(request("w", "A"), {});
  std::optional<LockResult> b1, c, b2;
  wait_for(request("w", "B", milliseconds(1000), milliseconds(5000), 2), b1);
  wait_for(request("w", "C", milliseconds(1000), milliseconds(5000), 3), c);
  wait_for(request("w", "B", milliseconds(2000), milliseconds(5000), 4), b2);
  table_.release("w", "A");
  ASSERT_TRUE(b1 && b2);
  EXPECT_EQ(b1->outcome, LockOutcome::kAcquired);
  EXPECT_EQ(b2->outcome, LockOutcome::kExtended);
  EXPECT_EQ(b2->lock.token, b1->lock.token);
  EXPECT_EQ(b2->lock.expires_at - clock_.system(), milliseconds(2000));  // the longer lease
  EXPECT_FALSE(c);
  EXPECT_EQ(table_.query("w")->waiters, 1u);
}

TEST_F(LockTableTest, ManyWaitersLeaveCheaplyWhenTheirConnectionsClose) {
  table_.acquire(request("w", "A"), {});
  std::vector<std::optional<LockResult>> results(2000);
  for (std::size_t i = 0; i < results.size(); ++i) {
    wait_for(
        request("w", "W" + std::to_string(i), milliseconds(1000), milliseconds(60'000), 10 + i),
        results[i]);
  }
  for (std::size_t i = 0; i + 1 < results.size(); ++i) table_.drop_connection(10 + i);
  EXPECT_EQ(table_.query("w")->waiters, 1u);
  table_.release("w", "A");
  ASSERT_TRUE(results.back());
  EXPECT_EQ(results.back()->lock.holder, "W1999");
}

TEST_F(LockTableTest, TokensIncreaseAcrossLocksAndPersistAheadInBlocks) {
  std::uint64_t last = 0;
  for (int i = 0; i < 25; ++i) {
    const std::string name = "lock" + std::to_string(i % 3);
    LockResult result = table_.acquire(request(name, "A"), {});
    ASSERT_EQ(result.outcome, LockOutcome::kAcquired);
    EXPECT_GT(result.lock.token, last);
    last = result.lock.token;
    table_.release(name, "A");
  }
  // Block of 10: marks 10, 20, 30 were persisted before tokens 1, 11 and 21 were issued.
  EXPECT_EQ(persisted_, (std::vector<std::uint64_t>{10, 20, 30}));
}

TEST(LockTableSlowDisk, LeaseStartsAfterTheTokenIsPersisted) {
  // Regression: the lease used to start before a slow token write, so expiresAt - acquiredAt
  // came out shorter than lockTimeout.
  FakeClock clock;
  TokenAllocator tokens(0, [&](std::uint64_t) {
    clock.advance(milliseconds(8));  // the fsync
    return std::optional<std::string>();
  });
  LockTable table(clock, tokens);
  LockResult result =
      table.acquire({"w", "A", milliseconds(30'000), milliseconds(0), false, 1}, {});
  EXPECT_EQ(result.lock.expires_at - result.lock.acquired_at, milliseconds(30'000));
  clock.advance(milliseconds(29'999));
  EXPECT_TRUE(table.query("w"));
  clock.advance(milliseconds(1));
  EXPECT_FALSE(table.query("w"));
}

TEST(TokenAllocator, ContinuesAboveThePersistedMarkAndRefusesWhenItCannotPersist) {
  bool fail = false;
  TokenAllocator tokens(
      1000,
      [&](std::uint64_t) { return fail ? std::optional<std::string>("disk full") : std::nullopt; },
      2);
  EXPECT_EQ(tokens.next().token, 1001u);
  EXPECT_EQ(tokens.next().token, 1002u);
  fail = true;
  TokenAllocator::Next refused = tokens.next();
  ASSERT_TRUE(refused.error.has_value());
  EXPECT_EQ(refused.error->code, RefusalCode::kTokenNotIssued);
  EXPECT_EQ(refused.error->values, std::vector<std::string>{"disk full"});
  fail = false;
  EXPECT_EQ(tokens.next().token, 1003u);
}

TEST(TokenAllocator, NeverIssuesATokenAboveWhatJavaScriptReadsExactly) {
  std::vector<std::uint64_t> persisted;
  TokenAllocator tokens(kMaxFencingToken - 2, [&](std::uint64_t mark) {
    persisted.push_back(mark);
    return std::optional<std::string>();
  });
  EXPECT_EQ(tokens.next().token, kMaxFencingToken - 1);
  EXPECT_EQ(tokens.next().token, kMaxFencingToken);
  EXPECT_EQ(persisted, (std::vector<std::uint64_t>{kMaxFencingToken}));  // the block is cut short
  TokenAllocator::Next refused = tokens.next();
  EXPECT_EQ(refused.token, 0u);
  ASSERT_TRUE(refused.error.has_value());
  EXPECT_EQ(refused.error->code, RefusalCode::kTokensExhausted);
  FakeClock clock;
  LockTable table(clock, tokens);
  LockResult result =
      table.acquire({"w", "A", milliseconds(30'000), milliseconds(0), false, 1}, {});
  EXPECT_EQ(result.outcome, LockOutcome::kRefused);
  EXPECT_EQ(result.refusal, LockRefusal::kTokensExhausted);
  EXPECT_FALSE(table.query("w"));
}

TEST_F(LockTableTest, LimitsAreClearErrors) {
  LockTable small(clock_, tokens_,
                  {.max_locks = 1, .max_waiters_per_connection = 1, .max_waiters = 2});
  EXPECT_EQ(small.acquire(request("a", "A"), {}).outcome, LockOutcome::kAcquired);
  LockResult over = small.acquire(request("b", "A"), {});
  EXPECT_EQ(over.outcome, LockOutcome::kRefused);
  EXPECT_EQ(over.refusal, LockRefusal::kTooManyLocks);
  EXPECT_EQ(over.limit, 1u);
  EXPECT_EQ(
      small.acquire(request("a", "B", milliseconds(10), milliseconds(10), 5), [](auto&) {}).outcome,
      LockOutcome::kQueued);
  LockResult second_wait =
      small.acquire(request("a", "C", milliseconds(10), milliseconds(10), 5), [](auto&) {});
  EXPECT_EQ(second_wait.outcome, LockOutcome::kRefused);
  EXPECT_EQ(second_wait.refusal, LockRefusal::kTooManyWaitersOnConnection);
  EXPECT_EQ(second_wait.limit, 1u);
  EXPECT_EQ(
      small.acquire(request("a", "D", milliseconds(10), milliseconds(10), 6), [](auto&) {}).outcome,
      LockOutcome::kQueued);
  LockResult third_wait =
      small.acquire(request("a", "E", milliseconds(10), milliseconds(10), 7), [](auto&) {});
  EXPECT_EQ(third_wait.refusal, LockRefusal::kTooManyWaiters);
  EXPECT_EQ(third_wait.limit, 2u);
}

}  // namespace
}  // namespace photon::core
