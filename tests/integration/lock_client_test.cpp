// libphoton's locks and LockGuard against the real photond binary over its real socket.
#include "daemon_fixture.hpp"
#include "photon/client.hpp"
#include "photon/lock_guard.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using photon::Client;
using photon::ClientError;
using photon::LockGuard;
using Clock = std::chrono::steady_clock;

// Polls `predicate` until it holds or `timeout` passes; returns whether it held.
template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (!predicate()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// The kind of ClientError `call` throws; nothing when it throws none.
template <typename Call>
std::optional<ClientError::Kind> error_kind(Call call) {
  try {
    call();
  } catch (const ClientError& error) {
    return error.kind();
  }
  return std::nullopt;
}

class Locks : public photon::testing::DaemonFixture {
 protected:
  // A client of its own session (clients of one session are one holder).
  Client client_as(const std::string& session, std::chrono::milliseconds timeout = 10s) {
    return Client::connect(kName, {.timeout = timeout, .session_id = session});
  }
};

// LockGuard's renewals against a daemon on the test clock (photond --test-clock): leases run on
// the daemon's clock, which only the test moves, so "the lease never ended" is exact however slow
// the machine. The guard renews on real time (every ttl/3); a renewal shows as the lease's end
// moving to the daemon's time plus the ttl.
class GuardOnTestClock : public Locks {
 protected:
  void SetUp() override {
#ifndef PHOTOND_HAS_TEST_CLOCK
    GTEST_SKIP() << "photond was built without PHOTON_TEST_CLOCK";
#endif
    Locks::SetUp();
  }
  std::vector<std::string> serve_args(const std::filesystem::path&) override {
    return {"--test-clock"};
  }

  // Lets `step` pass on the daemon's clock; returns its wall clock then.
  std::chrono::system_clock::time_point advance(std::chrono::milliseconds step) {
    if (!clock_) clock_.emplace(client_as("clock"));
    const boost::json::value data =
        clock_->request({{"type", "test_clock"}, {"advanceMs", step.count()}});
    return std::chrono::system_clock::time_point(
        std::chrono::milliseconds(data.at("wallMs").to_number<std::int64_t>()));
  }

  // Moves the daemon's clock by `step` (less than a lease), then waits for the guard's next
  // renewal: lock `name` then ends `ttl` after the new time.
  void pass_and_see_renewal(const std::string& name, std::chrono::milliseconds step,
                            std::chrono::milliseconds ttl) {
    const auto now = advance(step);
    Client observer = client_as("observer");
    EXPECT_TRUE(eventually([&] {
      const std::optional<photon::LockInfo> lock = observer.query_lock(name);
      return lock && lock->expires_at == now + ttl;
    })) << "no renewal of "
        << name << " after the clock moved";
  }

  std::optional<Client> clock_;
};

TEST_F(Locks, AcquireRefuseExtendRelease) {
  Client a = client_as("a");
  Client b = client_as("b");
  const auto before = std::chrono::system_clock::now() - 1ms;
  const photon::LockResult first = a.acquire_lock("board:write", {.ttl = 30s});
  ASSERT_TRUE(first) << first.reason;
  EXPECT_EQ(first.name, "board:write");
  EXPECT_EQ(first.holder, "a");
  EXPECT_GT(first.token, 0u);
  EXPECT_FALSE(first.extended);
  EXPECT_EQ(first.reason, "");
  EXPECT_GE(first.acquired_at, before);
  EXPECT_LE(first.acquired_at, std::chrono::system_clock::now());
  EXPECT_GE(first.expires_at - first.acquired_at, 29'990ms);
  EXPECT_LE(first.expires_at - first.acquired_at, 30s);

  const photon::LockResult refused = b.acquire_lock("board:write");
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.name, "board:write");
  EXPECT_EQ(refused.holder, "a");
  EXPECT_EQ(refused.token, 0u);
  EXPECT_EQ(refused.reason, "lock \"board:write\" is held by a");
  EXPECT_LE(refused.expires_at - first.expires_at, 2ms);
  EXPECT_GE(refused.expires_at - first.expires_at, -2ms);

  const photon::LockResult again = a.acquire_lock("board:write", {.ttl = 60s});
  ASSERT_TRUE(again) << again.reason;
  EXPECT_TRUE(again.extended);
  EXPECT_EQ(again.token, first.token);
  EXPECT_EQ(again.acquired_at, first.acquired_at);
  EXPECT_GE(again.expires_at - first.expires_at, 29s);

  const photon::LockRelease not_ours = b.release_lock("board:write");
  EXPECT_FALSE(not_ours);
  EXPECT_EQ(not_ours.reason, "lock \"board:write\" is held by a");
  EXPECT_TRUE(a.release_lock("board:write"));
  EXPECT_TRUE(a.release_lock("board:write")) << "releasing a lock nobody holds reports released";

  const photon::LockResult next = b.acquire_lock("board:write");
  ASSERT_TRUE(next) << next.reason;
  EXPECT_EQ(next.holder, "b");
  EXPECT_GT(next.token, first.token);
}

TEST_F(Locks, ClientsOfOneSessionAreOneHolder) {
  Client one = client_as("same");
  Client two = client_as("same");
  const photon::LockResult first = one.acquire_lock("x");
  ASSERT_TRUE(first);
  const photon::LockResult second = two.acquire_lock("x");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second.extended);
  EXPECT_EQ(second.token, first.token);
  EXPECT_TRUE(two.release_lock("x"));
  EXPECT_FALSE(one.query_lock("x"));
}

TEST_F(Locks, ListAndQuery) {
  Client a = client_as("a");
  Client b = client_as("b");
  EXPECT_TRUE(a.list_locks().empty());
  EXPECT_FALSE(a.query_lock("y"));
  const photon::LockResult y = a.acquire_lock("y");
  const photon::LockResult x = b.acquire_lock("x", {.ttl = 5s});
  ASSERT_TRUE(y && x);

  const std::vector<photon::LockInfo> locks = a.list_locks();
  ASSERT_EQ(locks.size(), 2u);
  EXPECT_EQ(locks[0].name, "x");
  EXPECT_EQ(locks[0].holder, "b");
  EXPECT_EQ(locks[0].token, x.token);
  EXPECT_EQ(locks[0].acquired_at, x.acquired_at);
  EXPECT_LE(locks[0].expires_at, x.expires_at);
  EXPECT_EQ(locks[0].waiters, 0u);
  EXPECT_EQ(locks[1].name, "y");
  EXPECT_EQ(locks[1].holder, "a");
  EXPECT_EQ(locks[1].token, y.token);

  const std::optional<photon::LockInfo> queried = b.query_lock("y");
  ASSERT_TRUE(queried);
  EXPECT_EQ(queried->name, "y");
  EXPECT_EQ(queried->holder, "a");
  EXPECT_EQ(queried->token, y.token);
  EXPECT_EQ(queried->acquired_at, y.acquired_at);

  EXPECT_TRUE(a.release_lock("y"));
  EXPECT_FALSE(b.query_lock("y"));
  ASSERT_EQ(b.list_locks().size(), 1u);
}

TEST_F(Locks, InvalidRequestsThrowAndTheConnectionStays) {
  Client a = client_as("a");
  EXPECT_EQ(error_kind([&] { a.acquire_lock(""); }), ClientError::Kind::kRefused);
  EXPECT_EQ(error_kind([&] { a.acquire_lock("x", {.ttl = 0ms}); }), ClientError::Kind::kRefused);
  EXPECT_EQ(error_kind([&] { a.acquire_lock("x", {.ttl = 1s, .wait = -1ms}); }),
            ClientError::Kind::kRefused);
  EXPECT_EQ(error_kind([&] { a.query_lock(""); }), ClientError::Kind::kRefused);
  EXPECT_EQ(error_kind([&] { a.release_lock(std::string(300, 'n')); }),
            ClientError::Kind::kRefused);
  a.ping();
  EXPECT_TRUE(a.list_locks().empty());
}

TEST_F(Locks, WaitingAcquireIsServedWhenTheHolderReleases) {
  Client a = client_as("a");
  const photon::LockResult held = a.acquire_lock("w");
  ASSERT_TRUE(held);
  photon::LockResult waited;
  std::exception_ptr failure;
  std::thread waiter([&] {
    try {
      // A client timeout shorter than the wait: the reply timeout has to cover the wait.
      Client b = client_as("b", 300ms);
      waited = b.acquire_lock("w", {.ttl = 30s, .wait = 20s});
    } catch (...) {
      failure = std::current_exception();
    }
  });
  EXPECT_TRUE(eventually([&] {
    auto lock = a.query_lock("w");
    return lock && lock->waiters == 1;
  })) << "the waiter never queued";
  std::this_thread::sleep_for(600ms);  // twice the waiter's client timeout
  EXPECT_TRUE(a.release_lock("w"));
  waiter.join();  // bounded: the wait ends after 20 s at the latest
  if (failure) std::rethrow_exception(failure);
  ASSERT_TRUE(waited) << waited.reason;
  EXPECT_EQ(waited.holder, "b");
  EXPECT_FALSE(waited.extended);
  EXPECT_GT(waited.token, held.token);
  EXPECT_EQ(a.query_lock("w")->holder, "b");
}

TEST_F(Locks, WaitThatRunsOutIsARefusal) {
  Client a = client_as("a");
  ASSERT_TRUE(a.acquire_lock("w"));
  Client b = client_as("b");
  const auto start = Clock::now();
  const photon::LockResult refused = b.acquire_lock("w", {.wait = 300ms});
  const auto waited = Clock::now() - start;
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.holder, "a");
  EXPECT_EQ(refused.reason, "timed out after 300 ms: lock \"w\" is held by a");
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 5s);
}

TEST_F(Locks, ReleaseOnDisconnectEndsTheLockWithTheConnection) {
  Client watcher = client_as("watcher");
  {
    Client bound = client_as("bound");
    ASSERT_TRUE(bound.acquire_lock("d", {.release_on_disconnect = true}));
    Client unbound = client_as("unbound");
    ASSERT_TRUE(unbound.acquire_lock("e"));
  }
  EXPECT_TRUE(eventually([&] { return !watcher.query_lock("d"); }));
  ASSERT_TRUE(watcher.query_lock("e"))
      << "a lock without release_on_disconnect outlives its connection";
  EXPECT_EQ(watcher.query_lock("e")->holder, "unbound");
}

TEST_F(Locks, GuardReleasesOnDestruction) {
  Client other = client_as("other");
  std::uint64_t token = 0;
  {
    LockGuard guard = LockGuard::acquire(kName, "r", {.ttl = 30s});
    ASSERT_TRUE(guard);
    token = guard.token();
    ASSERT_TRUE(other.query_lock("r"));
  }
  EXPECT_FALSE(other.query_lock("r")) << "released at once, long before its 30 s lease";
  const photon::LockResult next = other.acquire_lock("r");
  ASSERT_TRUE(next);
  EXPECT_GT(next.token, token);
}

TEST_F(Locks, GuardReleaseReportsAndEndsOwnership) {
  LockGuard guard = LockGuard::acquire(kName, "x");
  ASSERT_TRUE(guard);
  const std::uint64_t token = guard.token();
  const photon::LockRelease released = guard.release();
  EXPECT_TRUE(released) << released.reason;
  EXPECT_FALSE(guard.owns_lock());
  EXPECT_FALSE(guard.lost());
  EXPECT_EQ(guard.token(), token);
  EXPECT_FALSE(guard.release()) << "a second release has nothing to release";
  EXPECT_FALSE(client_as("other").query_lock("x"));
}

TEST_F(Locks, RefusedGuardOwnsNothingAndSaysWhy) {
  Client a = client_as("a");
  ASSERT_TRUE(a.acquire_lock("busy"));
  LockGuard guard = LockGuard::acquire(kName, "busy");
  EXPECT_FALSE(guard);
  EXPECT_FALSE(guard.owns_lock());
  EXPECT_EQ(guard.result().holder, "a");
  EXPECT_EQ(guard.result().reason, "lock \"busy\" is held by a");
  EXPECT_EQ(guard.token(), 0u);
  EXPECT_FALSE(guard.lost());
  EXPECT_FALSE(guard.release());
  EXPECT_EQ(a.query_lock("busy")->holder, "a");
}

TEST_F(Locks, GuardsExcludeEachOtherWithinOneProcess) {
  LockGuard first = LockGuard::acquire(kName, "p");
  ASSERT_TRUE(first);
  EXPECT_NE(first.result().holder, photon::default_session_id());
  EXPECT_TRUE(first.result().holder.starts_with(photon::default_session_id() + "/g"));
  LockGuard second = LockGuard::acquire(kName, "p");
  EXPECT_FALSE(second);
  EXPECT_EQ(second.result().holder, first.result().holder);
  // Guards given one session are one holder.
  LockGuard shared = LockGuard::acquire(kName, "p", {}, {.session_id = first.result().holder});
  ASSERT_TRUE(shared);
  EXPECT_TRUE(shared.result().extended);
}

TEST_F(GuardOnTestClock, RenewsPastItsTtl) {
  Client other = client_as("other");
  LockGuard guard = LockGuard::acquire(kName, "g", {.ttl = 3s});
  ASSERT_TRUE(guard) << guard.result().reason;
  EXPECT_GT(guard.token(), 0u);
  // 8 s of the daemon's time in moves of 2 s, over two leases of 3 s, each move followed by a
  // renewal: another session is refused after every one.
  for (int move = 0; move < 4; ++move) {
    pass_and_see_renewal("g", 2s, 3s);
    const photon::LockResult attempt = other.acquire_lock("g");
    ASSERT_FALSE(attempt) << "another session got the lock after move " << move;
    EXPECT_EQ(attempt.holder, guard.result().holder);
  }
  EXPECT_EQ(other.query_lock("g")->token, guard.token())
      << "renewals extend the lease, they do not acquire anew";
  EXPECT_FALSE(guard.lost());
}

TEST_F(GuardOnTestClock, WaitsForTheLockAndRenewsAfterTheWait) {
  Client a = client_as("a");
  const photon::LockResult held = a.acquire_lock("q");
  ASSERT_TRUE(held);
  std::thread releaser([&a] {
    // Released once the guard waits for it (the wait is on the daemon's clock: it never runs out
    // by itself).
    eventually([&a] {
      const std::optional<photon::LockInfo> lock = a.query_lock("q");
      return lock && lock->waiters == 1;
    });
    try {
      a.release_lock("q");
    } catch (const ClientError&) {
    }
  });
  LockGuard guard = LockGuard::acquire(kName, "q", {.ttl = 3s, .wait = 10s});
  releaser.join();
  ASSERT_TRUE(guard) << guard.result().reason;
  EXPECT_GT(guard.token(), held.token);
  pass_and_see_renewal("q", 2s, 3s);
  pass_and_see_renewal("q", 2s, 3s);  // 4 s: over the first lease
  Client b = client_as("b");
  EXPECT_FALSE(b.acquire_lock("q"));
  EXPECT_FALSE(guard.lost());
  EXPECT_EQ(b.query_lock("q")->token, guard.token());
}

TEST_F(GuardOnTestClock, MovesKeepTheLease) {
  Client other = client_as("other");
  LockGuard outer;
  EXPECT_FALSE(outer);
  std::uint64_t token = 0;
  {
    LockGuard inner = LockGuard::acquire(kName, "m", {.ttl = 3s});
    ASSERT_TRUE(inner);
    token = inner.token();
    outer = std::move(inner);
    EXPECT_FALSE(inner.owns_lock());
    EXPECT_EQ(inner.token(), 0u);
  }
  ASSERT_TRUE(outer);
  EXPECT_EQ(outer.token(), token);
  // Still renewed, by the thread the moved guard brought along.
  pass_and_see_renewal("m", 2s, 3s);
  pass_and_see_renewal("m", 2s, 3s);
  EXPECT_FALSE(other.acquire_lock("m"));
  EXPECT_FALSE(outer.lost());
  // Assigning another guard releases the lock held before.
  outer = LockGuard::acquire(kName, "n");
  EXPECT_FALSE(other.query_lock("m"));
  EXPECT_TRUE(other.query_lock("n"));
}

TEST_F(Locks, GuardDetectsALeaseTakenOver) {
  LockGuard guard = LockGuard::acquire(kName, "t", {.ttl = 300ms});
  ASSERT_TRUE(guard);
  // Someone releases the lock in the guard's name and another session takes it: the next renewal
  // is refused, whichever came first (a renewal never takes the free lock).
  EXPECT_TRUE(client_as(guard.result().holder).release_lock("t"));
  Client other = client_as("other");
  ASSERT_TRUE(other.acquire_lock("t", {.ttl = 30s, .wait = 5s}));
  EXPECT_TRUE(eventually([&] { return guard.lost(); }, 5s));
  EXPECT_TRUE(guard.owns_lock());
  const photon::LockRelease released = guard.release();
  EXPECT_FALSE(released);
  EXPECT_EQ(released.reason, "lock \"t\" is held by other");
  EXPECT_EQ(other.query_lock("t")->holder, "other");
}

TEST_F(Locks, GuardNeverTakesBackALockReleasedInItsName) {
  LockGuard guard = LockGuard::acquire(kName, "u", {.ttl = 300ms});
  ASSERT_TRUE(guard);
  Client other = client_as("other");
  EXPECT_TRUE(client_as(guard.result().holder).release_lock("u"));
  EXPECT_TRUE(eventually([&] { return guard.lost(); }, 5s));
  // The renewal that found the lease gone took nothing: the lock is free for anyone.
  EXPECT_FALSE(other.query_lock("u"));
  EXPECT_TRUE(other.acquire_lock("u"));
}

TEST_F(Locks, RenewLockExtendsOnlyTheLeaseUnderItsToken) {
  Client a = client_as("a");
  const photon::LockResult first = a.acquire_lock("rn", {.ttl = 30s});
  ASSERT_TRUE(first) << first.reason;
  const photon::LockResult renewed = a.renew_lock("rn", first.token, {.ttl = 60s});
  ASSERT_TRUE(renewed) << renewed.reason;
  EXPECT_TRUE(renewed.extended);
  EXPECT_EQ(renewed.token, first.token);
  EXPECT_GT(renewed.expires_at, first.expires_at);
  ASSERT_TRUE(a.release_lock("rn"));
  const photon::LockResult ended = a.renew_lock("rn", first.token);
  EXPECT_FALSE(ended);
  EXPECT_EQ(ended.holder, "");
  EXPECT_EQ(ended.reason, "the lease of lock \"rn\" under token " + std::to_string(first.token) +
                              " has ended: the lock was not taken again");
  EXPECT_FALSE(a.query_lock("rn"));
  EXPECT_EQ(error_kind([&] { a.renew_lock("rn", 0); }), ClientError::Kind::kRefused);
}

TEST_F(Locks, GuardDetectsADaemonThatWentAway) {
  LockGuard guard = LockGuard::acquire(kName, "gone", {.ttl = 300ms}, {.timeout = 1s});
  ASSERT_TRUE(guard);
  ::kill(pid_, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  EXPECT_TRUE(eventually([&] { return guard.lost(); }, 5s));
  const auto start = Clock::now();
  EXPECT_FALSE(guard.release());
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST_F(Locks, GuardDestructionIsBoundedByTheClientTimeout) {
  std::optional<LockGuard> guard =
      LockGuard::acquire(kName, "slow", {.ttl = 30s}, {.timeout = 500ms});
  ASSERT_TRUE(*guard);
  ASSERT_EQ(::kill(pid_, SIGSTOP), 0);
  const auto start = Clock::now();
  guard.reset();
  const auto took = Clock::now() - start;
  ASSERT_EQ(::kill(pid_, SIGCONT), 0);
  EXPECT_GE(took, 400ms) << "the stopped daemon cannot have answered the release";
  EXPECT_LT(took, 1500ms);
}

}  // namespace
