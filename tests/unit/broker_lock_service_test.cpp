// The broker's lock service against a broker the test answers by hand, on a fake clock: its answers
// (as the dispatch layer writes them, daemon/lock_replies.hpp), waiting acquires retried on release
// notifications and at the holder's expiry, wait deadlines, errors when the broker cannot answer,
// release on disconnect, the locks counted as held through this daemon, and the fencing-token
// mark: the floor of every ask, and no answer carrying a token before the mark on disk covers it.
// Then two daemons' services over one store that keeps locks as the Lua scripts do: the
// releaseOnDisconnect bindings follow one daemon's rule across connections and daemons.
#include "broker/broker_lock_service.hpp"
#include "daemon/lock_replies.hpp"

#include "fake_clock.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <deque>
#include <map>

namespace photon::broker {
namespace {

using namespace std::chrono_literals;

// Records requests; the test answers them in order.
class ScriptedBroker final : public broker::Broker {
 public:
  struct Acquire {
    std::string name, holder;
    std::chrono::milliseconds lease;
    std::uint64_t above;
    std::optional<std::uint64_t> bind_to;
    std::uint64_t renew_token;
    std::function<void(SharedLockResult)> done;
  };
  // By the holder; or, on a close, by the connection the lock must still be bound to (holder "").
  struct Release {
    std::string name, holder;
    std::function<void(broker::SharedReleaseResult)> done;
    std::uint64_t connection = 0;
  };
  std::deque<Acquire> acquires;
  std::deque<Release> releases;

  void set_listener(broker::BrokerListener*) override {}
  void forward(std::string_view, const boost::json::value&) override {}
  void acquire(const std::string& name, const std::string& holder, std::chrono::milliseconds lease,
               std::uint64_t above, std::optional<std::uint64_t> bind_to, std::uint64_t renew_token,
               std::function<void(SharedLockResult)> done) override {
    acquires.push_back({name, holder, lease, above, bind_to, renew_token, std::move(done)});
  }
  void release(const std::string& name, const std::string& holder,
               std::function<void(broker::SharedReleaseResult)> done) override {
    releases.push_back({name, holder, std::move(done)});
  }
  void release_bound(const std::string& name, std::uint64_t connection,
                     std::function<void(broker::SharedReleaseResult)> done) override {
    releases.push_back({name, "", std::move(done), connection});
  }
  void query(const std::string&,
             std::function<void(std::optional<SharedLock>, std::string)> done) override {
    done(std::nullopt, "not scripted");
  }
  void list(std::size_t, std::function<void(std::vector<SharedLock>, std::string)> done) override {
    done({SharedLock{"a", "h", 1, 2, 3}}, {});
  }
  void job_history(const std::string&, std::size_t,
                   std::function<void(boost::json::array, std::string)> done) override {
    done({}, {});
  }
  boost::json::object status() const override { return {}; }

  // Answers the oldest acquire.
  void answer(SharedLockOutcome outcome, std::string holder, std::int64_t expires_at = 0,
              std::uint64_t token = 7) {
    ASSERT_FALSE(acquires.empty());
    Acquire next = std::move(acquires.front());
    acquires.pop_front();
    SharedLockResult result;
    result.outcome = outcome;
    result.lock = SharedLock{next.name, std::move(holder), 100, expires_at, token};
    if (outcome == SharedLockOutcome::kFailed)
      result.error = "redis at unix:///r.sock is unreachable";
    if (outcome == SharedLockOutcome::kLimitReached) result.error = "too many locks held (limit 3)";
    if (outcome == SharedLockOutcome::kNoToken) result.error = "the next token would exceed 9";
    next.done(result);
  }
};

class BrokerLockServiceTest : public ::testing::Test {
 protected:
  BrokerLockServiceTest() : locks_(clock_, broker_, tokens_, {.max_locks = 3}, nullptr) {}

  // One `lock` request as the dispatcher reads it.
  struct Call {
    core::ConnectionId connection;
    std::string id, name, holder;
    std::chrono::milliseconds lease, wait;
    bool release_on_disconnect;
  };
  bool send(core::ConnectionId connection, const std::string& line) {
    if (closed_.contains(connection)) return false;
    sent_.emplace_back(connection, boost::json::parse(line).as_object());
    return true;
  }
  void lock(Call call) {
    locks_.acquire({call.name, call.holder, call.lease, call.wait, call.release_on_disconnect,
                    call.connection},
                   [this, call](const core::LockResult& result) {
                     return send(call.connection,
                                 daemon::lock_reply(call.id, call.name, result, call.wait));
                   });
  }
  void list(core::ConnectionId connection, std::string id) {
    locks_.list([this, connection, id](const core::LockListResult& result) {
      send(connection, daemon::list_locks_reply(id, result));
    });
  }
  void query(core::ConnectionId connection, std::string id, std::string name) {
    locks_.query(name, [this, connection, id](const core::LockQueryResult& result) {
      send(connection, daemon::query_lock_reply(id, result));
    });
  }
  void unlock(core::ConnectionId connection, std::string id, std::string name, std::string holder) {
    locks_.release(connection, name, holder,
                   [this, connection, id, name](const core::ReleaseResult& result) {
                     send(connection, daemon::unlock_reply(id, name, result));
                   });
  }

  boost::json::object take() {
    EXPECT_FALSE(sent_.empty());
    if (sent_.empty()) return {};
    auto line = std::move(sent_.front().second);
    sent_.pop_front();
    return line;
  }
  std::int64_t now_ms() const { return epoch_millis(clock_.system()); }

  // Runs the oldest held save of the token mark (its write, then its completion).
  void run_save() {
    ASSERT_FALSE(held_saves_.empty());
    auto [work, then] = std::move(held_saves_.front());
    held_saves_.pop_front();
    work();
    then();
  }

  testing::FakeClock clock_;
  ScriptedBroker broker_;
  // The token file: marks written, in order; a save fails while save_error_ is set; saves run at
  // once unless hold_saves_ (then when the test calls run_save()).
  std::vector<std::uint64_t> saved_;
  std::optional<std::string> save_error_;
  bool hold_saves_ = false;
  std::deque<std::pair<std::function<void()>, std::function<void()>>> held_saves_;
  core::TokenMark tokens_{0,
                          [this](std::uint64_t mark) {
                            if (save_error_) return save_error_;
                            saved_.push_back(mark);
                            return std::optional<std::string>();
                          },
                          [this](std::function<void()> work, std::function<void()> then) {
                            if (hold_saves_) {
                              held_saves_.emplace_back(std::move(work), std::move(then));
                              return;
                            }
                            work();
                            then();
                          }};
  std::set<core::ConnectionId> closed_;
  std::deque<std::pair<core::ConnectionId, boost::json::object>> sent_;
  BrokerLockService locks_;
};

TEST_F(BrokerLockServiceTest, AcquiredAndRefusedReplies) {
  lock({1, "l1", "board", "cli-1", 30s, 0ms, false});
  ASSERT_EQ(broker_.acquires.size(), 1u);
  EXPECT_EQ(broker_.acquires.front().lease, 30s);
  broker_.answer(SharedLockOutcome::kAcquired, "cli-1", now_ms() + 30000, 17);
  auto reply = take();
  EXPECT_EQ(reply["id"], "l1");
  EXPECT_EQ(reply["success"], true);
  EXPECT_EQ(reply["data"].at("token"), 17);
  EXPECT_EQ(reply["data"].at("holder"), "cli-1");

  lock({1, "l2", "board", "cli-2", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kRefused, "cli-1", now_ms() + 1000);
  reply = take();
  EXPECT_EQ(reply["success"], false);
  EXPECT_EQ(reply["data"].at("reason"), "lock \"board\" is held by cli-1");
}

TEST_F(BrokerLockServiceTest, ARefusedRenewalIsALeaseThatEndedAndTakesNothing) {
  // Held through this daemon, then released elsewhere (another daemon of the photon).
  lock({1, "l1", "board", "cli-1", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kAcquired, "cli-1", now_ms() + 30000, 17);
  take();
  ASSERT_EQ(locks_.held(), 1u);
  core::LockRequest renewal{"board", "cli-1", 30s, 0ms, false, 1};
  renewal.renew_token = 17;
  locks_.acquire(renewal, [this](const core::LockResult& result) {
    return send(1, daemon::lock_reply("r1", "board", result, 0ms, 17));
  });
  ASSERT_EQ(broker_.acquires.size(), 1u);
  EXPECT_EQ(broker_.acquires.front().renew_token, 17u);
  broker_.answer(SharedLockOutcome::kRefused, "", 0, 0);  // free: the lease had ended
  auto reply = take();
  EXPECT_EQ(reply["success"], false);
  EXPECT_EQ(reply["data"].at("acquired"), false);
  EXPECT_EQ(reply["data"].at("holder"), "");
  EXPECT_FALSE(reply["data"].as_object().contains("expiresAt"));
  EXPECT_EQ(reply["data"].at("reason"),
            "the lease of lock \"board\" under token 17 has ended: the lock was not taken again");
  EXPECT_EQ(locks_.held(), 0u);
  EXPECT_TRUE(broker_.releases.empty());
}

TEST_F(BrokerLockServiceTest, UnreachableBrokerIsAnErrorNeverAGrant) {
  lock({1, "l1", "board", "cli-1", 30s, 5000ms, false});
  broker_.answer(SharedLockOutcome::kFailed, "");
  auto reply = take();
  EXPECT_EQ(reply["type"], "error");
  EXPECT_EQ(reply["error"], "lock service unavailable: redis at unix:///r.sock is unreachable");
  EXPECT_FALSE(locks_.next_deadline());
}

TEST_F(BrokerLockServiceTest, ThePhotonsLockLimitIsTheLocalTablesError) {
  lock({1, "l1", "board", "cli-1", 30s, 5000ms, false});
  broker_.answer(SharedLockOutcome::kLimitReached, "");
  auto reply = take();
  EXPECT_EQ(reply["type"], "error");
  EXPECT_EQ(reply["error"], "too many locks held (limit 3)");
  EXPECT_FALSE(locks_.next_deadline());  // the waiter is answered, not kept
}

TEST_F(BrokerLockServiceTest, AWaiterThatFindsThePhotonAtItsLimitKeepsWaiting) {
  lock({1, "w", "board", "me", 30s, 5000ms, false});
  broker_.answer(SharedLockOutcome::kRefused, "other", now_ms() + 300);
  clock_.advance(300ms);
  locks_.expire_due();
  // The lock is free now, but another daemon took the photon's last lock meanwhile.
  broker_.answer(SharedLockOutcome::kLimitReached, "");
  EXPECT_TRUE(sent_.empty());
  ASSERT_TRUE(locks_.next_deadline());
  EXPECT_LE(*locks_.next_deadline(), clock_.steady() + 1s);
  clock_.advance(1s);
  locks_.expire_due();
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000, 9);
  auto reply = take();
  EXPECT_EQ(reply["success"], true);
  EXPECT_EQ(reply["data"].at("token"), 9);
}

TEST_F(BrokerLockServiceTest, WaiterRetriesOnReleaseAndAtExpiryUntilItsDeadline) {
  lock({1, "w", "board", "me", 30s, 5000ms, false});
  broker_.answer(SharedLockOutcome::kRefused, "other", now_ms() + 300);
  EXPECT_TRUE(sent_.empty());
  // Next try when the holder's lease ends (no notification comes for an expiry).
  ASSERT_TRUE(locks_.next_deadline());
  EXPECT_EQ(*locks_.next_deadline(), clock_.steady() + 300ms);
  clock_.advance(300ms);
  locks_.expire_due();
  ASSERT_EQ(broker_.acquires.size(), 1u);
  EXPECT_FALSE(locks_.next_deadline());  // in flight
  broker_.answer(SharedLockOutcome::kRefused, "third", now_ms() + 60000);
  // A long lease: asked again at least every second (a lost notification costs at most that).
  EXPECT_EQ(*locks_.next_deadline(), clock_.steady() + 1000ms);
  locks_.lock_released("board");
  ASSERT_EQ(broker_.acquires.size(), 1u);
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000);
  auto reply = take();
  EXPECT_EQ(reply["id"], "w");
  EXPECT_EQ(reply["data"].at("acquired"), true);
  EXPECT_FALSE(locks_.next_deadline());
}

TEST_F(BrokerLockServiceTest, WaitRunsOut) {
  lock({1, "w", "board", "me", 30s, 2500ms, false});
  for (int i = 0; i < 3; ++i) {
    broker_.answer(SharedLockOutcome::kRefused, "other", now_ms() + 60000);
    clock_.advance(*locks_.next_deadline() - clock_.steady());
    locks_.expire_due();
  }
  // The last try is at the deadline; its refusal ends the wait.
  broker_.answer(SharedLockOutcome::kRefused, "other", now_ms() + 60000);
  auto reply = take();
  EXPECT_EQ(reply["success"], false);
  EXPECT_EQ(reply["data"].at("reason"), "timed out after 2500 ms: lock \"board\" is held by other");
  EXPECT_FALSE(locks_.next_deadline());
}

TEST_F(BrokerLockServiceTest, ReleaseOnDisconnectAndWaitersLeaveWithTheirConnection) {
  lock({1, "l", "bound", "me", 30s, 0ms, true});
  ASSERT_EQ(broker_.acquires.front().bind_to, 1u);  // bound to connection 1 where Redis keeps it
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000);
  take();
  lock({2, "w", "bound", "you", 30s, 5000ms, false});
  EXPECT_FALSE(broker_.acquires.front().bind_to);
  broker_.answer(SharedLockOutcome::kRefused, "me", now_ms() + 30000);
  closed_.insert(2);
  locks_.connection_closed(2);
  EXPECT_FALSE(locks_.next_deadline());
  closed_.insert(1);
  locks_.connection_closed(1);
  ASSERT_EQ(broker_.releases.size(), 1u);
  EXPECT_EQ(broker_.releases.front().name, "bound");
  EXPECT_EQ(broker_.releases.front().connection, 1u);  // only while still bound to it
}

TEST_F(BrokerLockServiceTest, AReleaseOnDisconnectThatCannotReachRedisIsRetriedUntilItDoes) {
  lock({1, "l", "bound", "me", 30s, 0ms, true});
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000);
  take();
  closed_.insert(1);
  locks_.connection_closed(1);
  auto fail = [&] {
    ASSERT_EQ(broker_.releases.size(), 1u);
    auto release = std::move(broker_.releases.front());
    broker_.releases.pop_front();
    release.done({broker::SharedReleaseOutcome::kFailed, "", "redis is unreachable"});
  };
  fail();
  ASSERT_TRUE(locks_.next_deadline());
  EXPECT_EQ(*locks_.next_deadline(), clock_.steady() + 1s);
  locks_.expire_due();  // not yet
  EXPECT_TRUE(broker_.releases.empty());
  clock_.advance(1s);
  locks_.expire_due();
  fail();  // still away
  clock_.advance(1s);
  locks_.expire_due();
  ASSERT_EQ(broker_.releases.size(), 1u);
  EXPECT_EQ(broker_.releases.front().connection, 1u);
  auto release = std::move(broker_.releases.front());
  broker_.releases.pop_front();
  release.done({broker::SharedReleaseOutcome::kReleased, "me", ""});
  EXPECT_FALSE(locks_.next_deadline());
  clock_.advance(5s);
  locks_.expire_due();
  EXPECT_TRUE(broker_.releases.empty());
}

TEST_F(BrokerLockServiceTest, AGrantForAWaiterThatLeftIsGivenBack) {
  lock({3, "w", "n", "gone", 30s, 5000ms, false});
  closed_.insert(3);
  locks_.connection_closed(3);
  broker_.answer(SharedLockOutcome::kAcquired, "gone", now_ms() + 30000);
  EXPECT_TRUE(sent_.empty());
  ASSERT_EQ(broker_.releases.size(), 1u);
  EXPECT_EQ(broker_.releases.front().holder, "gone");
}

TEST_F(BrokerLockServiceTest, ListShowsLocalWaiters) {
  list(1, "ls");
  auto reply = take();
  auto& locks = reply["data"].at("locks").as_array();
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_EQ(locks[0].at("name"), "a");
  EXPECT_EQ(locks[0].at("waiters"), 0);
  query(1, "q", "a");
  EXPECT_EQ(take()["error"], "lock service unavailable: not scripted");
}

TEST_F(BrokerLockServiceTest, AGrantIsRepliedOnlyOnceTheMarkOnDiskCoversItsToken) {
  hold_saves_ = true;
  lock({1, "l1", "board", "cli-1", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kAcquired, "cli-1", now_ms() + 30000, 1'800'000'000'000'017);
  EXPECT_TRUE(sent_.empty());  // written first: a crash now must not let the token be issued again
  run_save();
  EXPECT_EQ(saved_, (std::vector<std::uint64_t>{1'800'000'000'000'017}));
  auto reply = take();
  EXPECT_EQ(reply["success"], true);
  EXPECT_EQ(reply["data"].at("token"), 1'800'000'000'000'017);
  // Extended: the same token, on disk already: answered at once.
  lock({1, "l2", "board", "cli-1", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kExtended, "cli-1", now_ms() + 30000, 1'800'000'000'000'017);
  EXPECT_TRUE(held_saves_.empty());
  EXPECT_EQ(take()["data"].at("extended"), true);
}

TEST_F(BrokerLockServiceTest, EveryAskIsForATokenAboveAllThisDaemonHandedOutOrSaw) {
  lock({1, "l1", "a", "me", 30s, 0ms, false});
  EXPECT_EQ(broker_.acquires.front().above, 0u);
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000, 500);
  take();
  lock({1, "l2", "b", "me", 30s, 0ms, false});
  EXPECT_EQ(broker_.acquires.front().above, 500u);
  broker_.answer(SharedLockOutcome::kRefused, "other", now_ms() + 30000, 800);  // theirs
  take();
  lock({1, "l3", "b", "me", 30s, 0ms, false});
  EXPECT_EQ(broker_.acquires.front().above, 800u);
  broker_.answer(SharedLockOutcome::kRefused, "other", now_ms() + 30000, 800);
  take();
  list(1, "ls");  // lists a lock with token 3: lower, changes nothing
  take();
  lock({1, "l4", "c", "me", 30s, 0ms, false});
  EXPECT_EQ(broker_.acquires.front().above, 800u);
}

TEST_F(BrokerLockServiceTest, GrantsArrivingDuringASaveShareTheNextOne) {
  hold_saves_ = true;
  for (int i = 0; i < 3; ++i) {
    lock({1, "l" + std::to_string(i), "n" + std::to_string(i), "me", 30s, 0ms, false});
  }
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000, 10);
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000, 11);
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000, 12);
  ASSERT_EQ(held_saves_.size(), 1u);
  run_save();
  EXPECT_EQ(take()["data"].at("token"), 10);
  EXPECT_TRUE(sent_.empty());
  run_save();
  EXPECT_EQ(saved_, (std::vector<std::uint64_t>{10, 12}));
  EXPECT_EQ(take()["data"].at("token"), 11);
  EXPECT_EQ(take()["data"].at("token"), 12);
}

TEST_F(BrokerLockServiceTest, AGrantWhoseTokenCannotBeWrittenIsAnErrorAndTheLockIsGivenBack) {
  save_error_ = "cannot write /p/daemons/x.tokens.tmp: No space left on device";
  lock({1, "l1", "board", "cli-1", 30s, 5000ms, false});
  broker_.answer(SharedLockOutcome::kAcquired, "cli-1", now_ms() + 30000, 40);
  auto reply = take();
  EXPECT_EQ(reply["type"], "error");
  EXPECT_EQ(reply["error"],
            "cannot issue a fencing token: cannot write /p/daemons/x.tokens.tmp: No space left on "
            "device");
  ASSERT_EQ(broker_.releases.size(), 1u);
  EXPECT_EQ(broker_.releases.front().name, "board");
  EXPECT_EQ(broker_.releases.front().holder, "cli-1");
  EXPECT_FALSE(locks_.next_deadline());  // the waiter was answered
  // The next ask is still above the token that could not be covered.
  save_error_.reset();
  lock({1, "l2", "board", "cli-1", 30s, 0ms, false});
  EXPECT_EQ(broker_.acquires.front().above, 40u);
}

TEST_F(BrokerLockServiceTest, AWaiterLeavingWhileItsTokenIsWrittenGivesTheLockBack) {
  hold_saves_ = true;
  lock({2, "w", "board", "me", 30s, 5000ms, false});
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000, 50);
  closed_.insert(2);
  locks_.connection_closed(2);
  run_save();
  EXPECT_TRUE(sent_.empty());
  ASSERT_EQ(broker_.releases.size(), 1u);
  EXPECT_EQ(broker_.releases.front().holder, "me");
}

TEST_F(BrokerLockServiceTest, NoTokenLeftIsAClearError) {
  lock({1, "l1", "board", "cli-1", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kNoToken, "");
  auto reply = take();
  EXPECT_EQ(reply["type"], "error");
  EXPECT_EQ(reply["error"],
            "cannot issue a fencing token: the next token would exceed 9007199254740991 (2^53 - "
            "1, the largest integer a JavaScript number holds exactly)");
}

TEST_F(BrokerLockServiceTest, CountsTheLocksHeldThroughThisDaemonUntilReleasedOrExpired) {
  EXPECT_EQ(locks_.held(), 0u);
  lock({1, "l1", "a", "me", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 30000, 5);
  lock({1, "l2", "b", "me", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kAcquired, "me", now_ms() + 1000, 6);
  lock({1, "l3", "c", "me", 30s, 0ms, false});
  broker_.answer(SharedLockOutcome::kRefused, "other", now_ms() + 30000, 7);  // not ours
  EXPECT_EQ(locks_.held(), 2u);
  // "b"'s lease ends in Redis by itself: it no longer counts.
  clock_.advance(1s);
  EXPECT_EQ(locks_.held(), 1u);
  unlock(1, "u1", "a", "me");
  ASSERT_EQ(broker_.releases.size(), 1u);
  auto release = std::move(broker_.releases.front());
  broker_.releases.pop_front();
  release.done({SharedReleaseOutcome::kReleased, "", ""});
  EXPECT_EQ(locks_.held(), 0u);
  take(), take(), take();
  auto reply = take();
  EXPECT_EQ(reply["id"], "u1");
  EXPECT_EQ(reply["data"].at("released"), true);
}

TEST_F(BrokerLockServiceTest, WaiterLimitsAreTheLocalTablesErrors) {
  BrokerLockService small(clock_, broker_, tokens_,
                          {.max_locks = 3, .max_waiters_per_connection = 1, .max_waiters = 2},
                          nullptr);
  auto ask = [&](core::ConnectionId connection, std::string id) {
    small.acquire({"n", "h" + id, 30s, 5s, false, connection},
                  [this, connection, id](const core::LockResult& result) {
                    return send(connection, daemon::lock_reply(id, "n", result, 5s));
                  });
  };
  ask(1, "w1");
  ask(1, "w2");
  EXPECT_EQ(take()["error"], "too many waiting lock requests on this connection (limit 1)");
  ask(2, "w3");
  ask(3, "w4");
  EXPECT_EQ(take()["error"], "too many waiting lock requests (limit 2)");
}

// The locks as Redis keeps them for every daemon of a photon (src/broker/lua/acquire.lua and
// release.lua), on the test's clock: what the daemons of a test share.
struct SharedStore {
  struct Entry {
    std::string holder;
    std::uint64_t token = 0;
    EpochMillis acquired = 0;
    EpochMillis expires = 0;
    std::string bound;  // DAEMON:CONNECTION, or "" (acquire.lua's field `bound`)
  };
  explicit SharedStore(const Clock& clock) : clock(clock) {}
  const Clock& clock;
  std::map<std::string, Entry> locks;
  std::uint64_t fence = 0;
  // Answers are given later, in order, as a broker gives them (run()).
  std::deque<std::function<void()>> answers;

  Entry* find(const std::string& name) {
    auto it = locks.find(name);
    if (it == locks.end()) return nullptr;
    if (it->second.expires <= epoch_millis(clock.system())) {
      locks.erase(it);
      return nullptr;
    }
    return &it->second;
  }
  void run() {
    while (!answers.empty()) {
      auto next = std::move(answers.front());
      answers.pop_front();
      next();
    }
  }
};

// One daemon's broker on the shared store.
class StoreBroker final : public broker::Broker {
 public:
  StoreBroker(SharedStore& store, std::string instance)
      : store_(store), instance_(std::move(instance)) {}
  void set_listener(broker::BrokerListener*) override {}
  void forward(std::string_view, const boost::json::value&) override {}
  void acquire(const std::string& name, const std::string& holder, std::chrono::milliseconds lease,
               std::uint64_t above, std::optional<std::uint64_t> bind_to, std::uint64_t renew_token,
               std::function<void(SharedLockResult)> done) override {
    const std::string bound = bind_to ? binding(*bind_to) : "";
    store_.answers.push_back(
        [this, name, holder, lease, above, bound, renew_token, done = std::move(done)] {
          const EpochMillis now = epoch_millis(store_.clock.system());
          SharedLockResult result;
          SharedStore::Entry* entry = store_.find(name);
          // As acquire.lua: a renewal only extends the holder's lock under its token.
          if (renew_token != 0 &&
              (entry == nullptr || entry->holder != holder || entry->token != renew_token)) {
            result.outcome = SharedLockOutcome::kRefused;
            // As acquire.lua: the lock as it is now (free: no holder).
            result.lock = entry == nullptr ? SharedLock{name, "", 0, 0, 0}
                                           : SharedLock{name, entry->holder, entry->acquired,
                                                        entry->expires, entry->token};
            return done(result);
          }
          if (entry == nullptr) {
            store_.fence = std::max(store_.fence, above) + 1;
            entry = &store_.locks[name];
            *entry = {holder, store_.fence, now, now + lease.count(), bound};
            result.outcome = SharedLockOutcome::kAcquired;
          } else if (entry->holder == holder) {
            entry->expires = now + lease.count();
            if (!bound.empty()) entry->bound = bound;
            result.outcome = SharedLockOutcome::kExtended;
          } else {
            result.outcome = SharedLockOutcome::kRefused;
          }
          result.lock = {name, entry->holder, entry->acquired, entry->expires, entry->token};
          done(result);
        });
  }
  void release(const std::string& name, const std::string& holder,
               std::function<void(broker::SharedReleaseResult)> done) override {
    store_.answers.push_back([this, name, holder, done = std::move(done)] {
      SharedStore::Entry* entry = store_.find(name);
      if (entry == nullptr) return done({SharedReleaseOutcome::kNotHeld, "", ""});
      if (entry->holder != holder)
        return done({SharedReleaseOutcome::kHeldByOther, entry->holder, ""});
      store_.locks.erase(name);
      done({SharedReleaseOutcome::kReleased, holder, ""});
    });
  }
  void release_bound(const std::string& name, std::uint64_t connection,
                     std::function<void(broker::SharedReleaseResult)> done) override {
    store_.answers.push_back([this, name, connection, done = std::move(done)] {
      SharedStore::Entry* entry = store_.find(name);
      if (entry == nullptr) return done({SharedReleaseOutcome::kNotHeld, "", ""});
      if (entry->bound != binding(connection))
        return done({SharedReleaseOutcome::kHeldByOther, entry->holder, ""});
      const std::string holder = entry->holder;
      store_.locks.erase(name);
      done({SharedReleaseOutcome::kReleased, holder, ""});
    });
  }
  void query(const std::string& name,
             std::function<void(std::optional<SharedLock>, std::string)> done) override {
    store_.answers.push_back([this, name, done = std::move(done)] {
      SharedStore::Entry* entry = store_.find(name);
      if (entry == nullptr) return done(std::nullopt, {});
      done(SharedLock{name, entry->holder, entry->acquired, entry->expires, entry->token}, {});
    });
  }
  void list(std::size_t, std::function<void(std::vector<SharedLock>, std::string)> done) override {
    done({}, "not scripted");
  }
  void job_history(const std::string&, std::size_t,
                   std::function<void(boost::json::array, std::string)> done) override {
    done({}, {});
  }
  boost::json::object status() const override { return {}; }

 private:
  std::string binding(std::uint64_t connection) const {
    return instance_ + ":" + std::to_string(connection);
  }
  SharedStore& store_;
  std::string instance_;
};

// Two daemons of one photon, each with its lock service over its broker, sharing one store: the
// releaseOnDisconnect bindings as one daemon keeps them (src/locks/lock_table.cpp): a lock is
// bound to the connection of the last request that asked for it (an acquisition or an
// extension), until the lock ends; a close frees only the locks bound to that connection.
class SharedBindingTest : public ::testing::Test {
 protected:
  struct Daemon {
    Daemon(SharedBindingTest& test, std::string instance)
        : broker(test.store_, std::move(instance)),
          tokens(
              0, [](std::uint64_t) { return std::optional<std::string>(); },
              [](std::function<void()> work, std::function<void()> then) {
                work();
                then();
              }),
          locks(test.clock_, broker, tokens, {}, nullptr) {}
    StoreBroker broker;
    core::TokenMark tokens;
    BrokerLockService locks;
  };

  // A lock request of `connection` on `daemon`; returns the reply's outcome as the wire says it.
  std::string lock(Daemon& daemon, core::ConnectionId connection, const std::string& holder,
                   bool release_on_disconnect) {
    std::string outcome = "unanswered";
    daemon.locks.acquire({"y", holder, 30s, 0ms, release_on_disconnect, connection},
                         [&outcome](const core::LockResult& result) {
                           outcome = result.outcome == core::LockOutcome::kAcquired   ? "acquired"
                                     : result.outcome == core::LockOutcome::kExtended ? "extended"
                                                                                      : "refused";
                           return true;
                         });
    store_.run();
    return outcome;
  }
  // A renewal of `holder`'s lease under `token` on `daemon`: "extended", or the refusal's kind.
  std::string renew(Daemon& daemon, const std::string& holder, std::uint64_t token) {
    std::string outcome = "unanswered";
    core::LockRequest renewal{"y", holder, 30s, 0ms, false, 1};
    renewal.renew_token = token;
    daemon.locks.acquire(renewal, [&outcome](const core::LockResult& result) {
      outcome = result.outcome == core::LockOutcome::kExtended     ? "extended"
                : result.refusal == core::LockRefusal::kLeaseEnded ? "lease ended"
                                                                   : "other";
      return true;
    });
    store_.run();
    return outcome;
  }
  std::uint64_t token_of_y() {
    SharedStore::Entry* entry = store_.find("y");
    return entry == nullptr ? 0 : entry->token;
  }
  bool unlock(Daemon& daemon, core::ConnectionId connection, const std::string& holder) {
    bool released = false;
    daemon.locks.release(connection, "y", holder, [&released](const core::ReleaseResult& result) {
      released = result.outcome == core::ReleaseOutcome::kReleased;
    });
    store_.run();
    return released;
  }
  void close(Daemon& daemon, core::ConnectionId connection) {
    daemon.locks.connection_closed(connection);
    store_.run();
  }
  // Who holds "y" now ("" when nobody does).
  std::string holder_of_y() {
    std::string holder = "unanswered";
    a_.locks.query("y", [&holder](const core::LockQueryResult& result) {
      holder = result.lock ? result.lock->holder : "";
    });
    store_.run();
    return holder;
  }

  testing::FakeClock clock_;
  SharedStore store_{clock_};
  Daemon a_{*this, "a"};
  Daemon b_{*this, "b"};
};

TEST_F(SharedBindingTest, ARenewalOnAnyDaemonExtendsOnlyTheLeaseUnderItsToken) {
  ASSERT_EQ(lock(a_, 1, "h0", false), "acquired");
  const std::uint64_t first = token_of_y();
  EXPECT_EQ(renew(b_, "h0", first), "extended");
  ASSERT_TRUE(unlock(b_, 2, "h0"));
  EXPECT_EQ(renew(a_, "h0", first), "lease ended");
  EXPECT_EQ(holder_of_y(), "");  // not taken again
  ASSERT_EQ(lock(b_, 2, "h0", false), "acquired");
  EXPECT_EQ(renew(a_, "h0", first), "lease ended");  // the same holder, a newer token
  EXPECT_EQ(renew(a_, "h0", token_of_y()), "extended");
  ASSERT_TRUE(unlock(a_, 1, "h0"));
  ASSERT_EQ(lock(b_, 2, "h1", false), "acquired");
  EXPECT_EQ(renew(a_, "h0", first), "lease ended");
  EXPECT_EQ(holder_of_y(), "h1");
}

TEST_F(SharedBindingTest, ALockExtendedWithReleaseOnDisconnectFollowsTheLastConnection) {
  // Connection 2 on the same daemon, then on another daemon: one rule.
  for (Daemon* second : {&a_, &b_}) {
    SCOPED_TRACE(second == &a_ ? "one daemon" : "two daemons");
    ASSERT_EQ(lock(a_, 1, "h0", true), "acquired");
    ASSERT_EQ(lock(*second, 2, "h0", true), "extended");  // now bound to connection 2
    close(a_, 1);
    EXPECT_EQ(holder_of_y(), "h0");
    close(*second, 2);
    EXPECT_EQ(holder_of_y(), "");
  }
}

TEST_F(SharedBindingTest, ACloseDoesNotFreeALaterLockTakenWithoutReleaseOnDisconnect) {
  for (Daemon* second : {&a_, &b_}) {
    SCOPED_TRACE(second == &a_ ? "one daemon" : "two daemons");
    ASSERT_EQ(lock(a_, 1, "h0", true), "acquired");
    ASSERT_TRUE(unlock(*second, 2, "h0"));  // the binding ends with the lock
    ASSERT_EQ(lock(*second, 2, "h0", false), "acquired");
    close(a_, 1);
    EXPECT_EQ(holder_of_y(), "h0");
    close(*second, 2);
    EXPECT_EQ(holder_of_y(), "h0");  // bound to no connection: it ends with its lease
    ASSERT_TRUE(unlock(a_, 3, "h0"));
  }
}

TEST_F(SharedBindingTest, AnExtensionWithoutReleaseOnDisconnectKeepsTheBinding) {
  ASSERT_EQ(lock(a_, 1, "h0", true), "acquired");
  ASSERT_EQ(lock(b_, 2, "h0", false), "extended");
  close(b_, 2);
  EXPECT_EQ(holder_of_y(), "h0");
  close(a_, 1);
  EXPECT_EQ(holder_of_y(), "");
}

}  // namespace
}  // namespace photon::broker
