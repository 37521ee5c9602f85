// Unit tests of the token mark that covers broker-issued fencing tokens on disk: a token is covered
// only after a save that includes it has succeeded, saves are grouped, failures are reported and
// retried, and the floor includes what was seen. The "writer thread" runs when the test says.
#include "locks/token_mark.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <vector>

namespace photon::core {
namespace {

class TokenMarkTest : public ::testing::Test {
 protected:
  // Runs the oldest held save (its work on "the writer", then its completion on "the loop").
  void run_save() {
    ASSERT_FALSE(held_.empty());
    auto [work, then] = std::move(held_.front());
    held_.pop_front();
    work();
    then();
  }
  TokenMark::Done record(std::uint64_t token) {
    return [this, token](std::optional<std::string> error) {
      answers_.emplace_back(token, error.value_or("ok"));
    };
  }

  std::vector<std::uint64_t> written_;
  std::optional<std::string> fail_;
  std::deque<std::pair<std::function<void()>, std::function<void()>>> held_;
  std::vector<std::pair<std::uint64_t, std::string>> answers_;
  TokenMark mark_{100,
                  [this](std::uint64_t mark) {
                    if (fail_) return fail_;
                    written_.push_back(mark);
                    return std::optional<std::string>();
                  },
                  [this](std::function<void()> work, std::function<void()> then) {
                    held_.emplace_back(std::move(work), std::move(then));
                  }};
};

TEST_F(TokenMarkTest, ATokenIsCoveredOnlyOnceASaveIncludingItIsDone) {
  EXPECT_EQ(mark_.floor(), 100u);
  mark_.cover(150, record(150));
  EXPECT_TRUE(answers_.empty());
  EXPECT_EQ(mark_.floor(), 150u);  // asked for above it already, though not yet on disk
  EXPECT_EQ(mark_.durable(), 100u);
  run_save();
  EXPECT_EQ(written_, (std::vector<std::uint64_t>{150}));
  EXPECT_EQ(answers_, (std::vector<std::pair<std::uint64_t, std::string>>{{150, "ok"}}));
  EXPECT_EQ(mark_.durable(), 150u);
}

TEST_F(TokenMarkTest, ATokenAlreadyOnDiskIsCoveredAtOnceWithoutASave) {
  mark_.cover(100, record(100));
  mark_.cover(7, record(7));
  EXPECT_TRUE(held_.empty());
  EXPECT_EQ(answers_.size(), 2u);
}

TEST_F(TokenMarkTest, TokensArrivingDuringASaveShareTheNextOne) {
  mark_.cover(110, record(110));
  mark_.cover(130, record(130));  // the save of 110 is in flight: these wait
  mark_.cover(120, record(120));
  ASSERT_EQ(held_.size(), 1u);
  run_save();
  EXPECT_EQ(answers_, (std::vector<std::pair<std::uint64_t, std::string>>{{110, "ok"}}));
  ASSERT_EQ(held_.size(), 1u);
  run_save();
  EXPECT_EQ(written_, (std::vector<std::uint64_t>{110, 130}));
  EXPECT_EQ(answers_, (std::vector<std::pair<std::uint64_t, std::string>>{
                          {110, "ok"}, {120, "ok"}, {130, "ok"}}));
  EXPECT_TRUE(held_.empty());
}

TEST_F(TokenMarkTest, ASeenTokenRaisesTheFloorAndGoesToDiskWithTheNextSave) {
  mark_.observe(500);
  EXPECT_EQ(mark_.floor(), 500u);
  EXPECT_TRUE(held_.empty());  // no save of its own
  mark_.observe(300);
  EXPECT_EQ(mark_.floor(), 500u);
  mark_.cover(200, record(200));
  run_save();
  EXPECT_EQ(written_, (std::vector<std::uint64_t>{500}));
  EXPECT_EQ(mark_.durable(), 500u);
}

TEST_F(TokenMarkTest, AFailedSaveAnswersItsTokensWithTheErrorAndTheNextTriesAgain) {
  fail_ = "cannot write /x/daemons/p.tokens.tmp: No space left on device";
  mark_.cover(150, record(150));
  run_save();
  EXPECT_EQ(answers_, (std::vector<std::pair<std::uint64_t, std::string>>{{150, *fail_}}));
  EXPECT_EQ(mark_.durable(), 100u);
  EXPECT_EQ(mark_.floor(), 150u);  // never asked for below a token that may have been used
  fail_.reset();
  mark_.cover(160, record(160));
  run_save();
  EXPECT_EQ(written_, (std::vector<std::uint64_t>{160}));
  EXPECT_EQ(answers_.back(), (std::pair<std::uint64_t, std::string>{160, "ok"}));
}

TEST(TokenMark, ASaveEndingAfterTheMarkIsGoneCallsNobody) {
  std::function<void()> work, then;
  bool called = false;
  {
    TokenMark mark(
        0, [](std::uint64_t) { return std::optional<std::string>(); },
        [&](std::function<void()> w, std::function<void()> t) {
          work = std::move(w);
          then = std::move(t);
        });
    mark.cover(1, [&](std::optional<std::string>) { called = true; });
  }
  work();  // the writer thread still finishes its write
  then();
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace photon::core
