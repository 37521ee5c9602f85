// The event streams' replay window: what a reconnecting stream is owed, and when it is told of a
// gap.
#include "channels/replay_window.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace photon::core {
namespace {

SharedBytes line(const std::string& text) { return make_shared_bytes(text); }

std::vector<std::string> texts(const ReplayedMessages& replay) {
  std::vector<std::string> out;
  for (const SharedBytes& bytes : replay.lines) out.push_back(*bytes);
  return out;
}

auto exactly(std::string name) {
  return [name = std::move(name)](std::string_view channel) { return channel == name; };
}
auto prefix(std::string start) {
  return
      [start = std::move(start)](std::string_view channel) { return channel.starts_with(start); };
}

TEST(ReplayWindow, OwesWhatCameAfterTheLastIdOnMatchingChannelsOldestFirst) {
  ReplayWindow window(100, 1 << 20);
  window.record(1, "board:a", line("a1"));
  window.record(2, "chat", line("c2"));
  window.record(3, "board:b", line("b3"));
  window.record(4, "board:a", line("a4"));
  const ReplayedMessages replay = window.since(1, prefix("board:"));
  EXPECT_FALSE(replay.gap);
  EXPECT_EQ(texts(replay), (std::vector<std::string>{"b3", "a4"}));
  EXPECT_TRUE(window.since(4, prefix("board:")).lines.empty());
  EXPECT_FALSE(window.since(0, exactly("chat")).gap);
}

TEST(ReplayWindow, AChannelOverItsOwnBoundsGivesUpItsOwnOldest) {
  ReplayWindow window(
      {.messages = 100, .bytes = 1 << 20, .channel_messages = 3, .channel_bytes = 1 << 20});
  window.record(1, "quiet", line("q1"));
  for (std::uint64_t id = 2; id <= 6; ++id)
    window.record(id, "busy", line("b" + std::to_string(id)));
  EXPECT_EQ(texts(window.since(0, exactly("busy"))), (std::vector<std::string>{"b4", "b5", "b6"}));
  EXPECT_TRUE(window.since(2, exactly("busy")).gap);
  EXPECT_FALSE(window.since(3, exactly("busy")).gap);
  EXPECT_EQ(texts(window.since(0, exactly("quiet"))), (std::vector<std::string>{"q1"}));
  EXPECT_EQ(window.messages(), 4u);

  ReplayWindow by_bytes({.messages = 100,
                         .bytes = 1 << 20,
                         .channel_messages = 100,
                         .channel_bytes = 10});  // a message costs its channel's name and line
  by_bytes.record(1, "c", line("1234"));
  by_bytes.record(2, "c", line("5678"));
  by_bytes.record(3, "c", line("9abc"));  // 15 bytes with the first: it goes
  EXPECT_EQ(texts(by_bytes.since(0, exactly("c"))), (std::vector<std::string>{"5678", "9abc"}));
  EXPECT_TRUE(by_bytes.since(0, exactly("c")).gap);
  by_bytes.record(4, "c", line("far too long for the channel"));  // not kept at all
  EXPECT_TRUE(by_bytes.since(3, exactly("c")).gap);
  EXPECT_EQ(by_bytes.messages(), 0u);
}

TEST(ReplayWindow, MessagesPastTheAgeBoundCountAsForgotten) {
  using std::chrono::minutes;
  const ReplayWindow::TimePoint t0{std::chrono::hours(1)};
  ReplayWindow window({.messages = 100,
                       .bytes = 1 << 20,
                       .channel_messages = 100,
                       .channel_bytes = 1 << 20,
                       .age = minutes(5)});
  window.record(1, "a", line("a1"), t0);
  window.record(2, "b", line("b2"), t0 + minutes(1));
  window.record(3, "a", line("a3"), t0 + minutes(4));
  // At 5 minutes exactly nothing has expired; a moment later a1 has.
  EXPECT_FALSE(window.since(0, prefix(""), t0 + minutes(5)).gap);
  const auto later = t0 + minutes(5) + std::chrono::milliseconds(1);
  const ReplayedMessages replay = window.since(0, prefix(""), later);
  EXPECT_TRUE(replay.gap);
  EXPECT_EQ(texts(replay), (std::vector<std::string>{"b2", "a3"}));
  EXPECT_FALSE(window.since(1, prefix(""), later).gap);  // seen a1: nothing missing
  EXPECT_FALSE(window.since(0, exactly("b"), later).gap);
  // A channel's next message takes its expired ones out of the window.
  window.record(4, "a", line("a4"), t0 + minutes(10));
  EXPECT_EQ(window.messages(), 2u);  // b2 stays until b publishes again or the window is full
  EXPECT_EQ(texts(window.since(0, exactly("a"), t0 + minutes(10))),
            (std::vector<std::string>{"a4"}));
}

TEST(ReplayWindow, ABusyChannelCannotPushAQuietOneOut) {
  ReplayWindow window(10, 1 << 20);
  window.record(1, "quiet", line("q1"));
  window.record(2, "quiet", line("q2"));
  for (std::uint64_t id = 3; id < 1000; ++id) window.record(id, "busy", line("b"));
  EXPECT_EQ(window.messages(), 10u);
  const ReplayedMessages quiet = window.since(0, exactly("quiet"));
  EXPECT_FALSE(quiet.gap);
  EXPECT_EQ(texts(quiet), (std::vector<std::string>{"q1", "q2"}));
  // The busy channel lost most of its messages: a stream on it from long ago is told so.
  const ReplayedMessages busy = window.since(2, exactly("busy"));
  EXPECT_TRUE(busy.gap);
  EXPECT_EQ(busy.lines.size(), 8u);
  EXPECT_EQ(*busy.lines.back(), "b");
  // A stream on it from within the window is owed the rest and no gap.
  EXPECT_FALSE(window.since(995, exactly("busy")).gap);
  EXPECT_EQ(window.since(995, exactly("busy")).lines.size(), 4u);
}

TEST(ReplayWindow, TheByteBoundTakesFromTheChannelKeepingTheMostBytes) {
  ReplayWindow window(100, 100);
  window.record(1, "small", line("s"));
  window.record(2, "big", line(std::string(60, 'x')));
  window.record(3, "big", line(std::string(60, 'y')));  // over 100 bytes: "big" gives up id 2
  EXPECT_LE(window.bytes(), 100u);
  EXPECT_FALSE(window.since(0, exactly("small")).gap);
  EXPECT_EQ(texts(window.since(0, exactly("small"))), (std::vector<std::string>{"s"}));
  const ReplayedMessages big = window.since(0, exactly("big"));
  EXPECT_TRUE(big.gap);
  EXPECT_EQ(texts(big), (std::vector<std::string>{std::string(60, 'y')}));
}

TEST(ReplayWindow, AMessageLargerThanTheWindowIsNotKeptAndLeavesAGap) {
  ReplayWindow window(100, 10);
  window.record(1, "c", line(std::string(50, 'z')));
  EXPECT_EQ(window.messages(), 0u);
  EXPECT_EQ(window.bytes(), 0u);
  EXPECT_TRUE(window.since(0, exactly("c")).gap);
  EXPECT_FALSE(window.since(1, exactly("c")).gap);
  EXPECT_FALSE(window.since(0, exactly("other")).gap);
}

// --replay-messages 0: nothing kept, no channel remembered by name, so any stream from before the
// last publish is told of a gap, whatever its channel.
TEST(ReplayWindow, AWindowOfNoMessagesKeepsNothingAndOwesEveryoneAGap) {
  ReplayWindow window(0, 1024);
  window.record(1, "a", line("a1"));
  window.record(2, "b", line("b2"));
  EXPECT_EQ(window.messages(), 0u);
  EXPECT_EQ(window.bytes(), 0u);
  const ReplayedMessages replay = window.since(1, prefix(""));
  EXPECT_TRUE(replay.gap);
  EXPECT_TRUE(replay.lines.empty());
  EXPECT_TRUE(window.since(1, exactly("a")).gap);
  EXPECT_FALSE(window.since(2, prefix("")).gap);
}

TEST(ReplayWindow, AChannelThatLostEverythingStillReportsItsGapUntilTooManyAreForgotten) {
  ReplayWindow window(2, 1 << 20);
  window.record(1, "gone", line("g1"));
  window.record(2, "x", line("x2"));
  window.record(3, "x", line("x3"));  // over 2: the largest channel ("x", 2 kept) gives up x2
  window.record(4, "y", line("y4"));  // "gone", "x" and "y" keep one each: the oldest, g1, goes
  EXPECT_EQ(window.messages(), 2u);
  const ReplayedMessages gone = window.since(0, exactly("gone"));
  EXPECT_TRUE(gone.gap);
  EXPECT_TRUE(gone.lines.empty());
  const ReplayedMessages x = window.since(2, exactly("x"));
  EXPECT_FALSE(x.gap);
  EXPECT_EQ(texts(x), (std::vector<std::string>{"x3"}));
  // Many channels later, names no longer kept make every stream from before them see a gap.
  for (std::uint64_t id = 5; id < 50; ++id) window.record(id, "c" + std::to_string(id), line("m"));
  EXPECT_TRUE(window.since(1, exactly("never-published")).gap);
  EXPECT_FALSE(window.since(49, exactly("never-published")).gap);
  EXPECT_EQ(texts(window.since(47, prefix("c"))), (std::vector<std::string>{"m", "m"}));
}

TEST(ReplayWindow, ARepublishedForgottenChannelIsKeptAgainAndRemembersItsLoss) {
  ReplayWindow window(1, 1 << 20);
  window.record(1, "a", line("a1"));
  window.record(2, "b", line("b2"));  // "a" and "b" keep one each: the older, a1, goes
  window.record(3, "a", line("a3"));  // and now b2
  EXPECT_EQ(window.messages(), 1u);
  const ReplayedMessages a = window.since(0, exactly("a"));
  EXPECT_TRUE(a.gap);
  EXPECT_EQ(texts(a), (std::vector<std::string>{"a3"}));
  EXPECT_FALSE(window.since(2, exactly("a")).gap);
  EXPECT_TRUE(window.since(0, exactly("b")).gap);
}

// Random traffic against a model that remembers everything: what a stream is owed is exactly
// what was published after its id on its channel, unless (and only if) a gap is reported.
TEST(ReplayWindow, RandomTrafficOwesExactlyWhatWasPublishedOrReportsTheGap) {
  constexpr std::size_t kMaxMessages = 16;
  constexpr std::size_t kMaxBytes = 400;
  const std::vector<std::string> channels = {"a", "b", "c", "d:1", "d:2", "e"};
  std::mt19937 random(20261127);
  ReplayWindow window(kMaxMessages, kMaxBytes);
  std::map<std::string, std::vector<std::uint64_t>> published;
  std::uint64_t next_id = 1;
  for (int step = 0; step < 20000; ++step) {
    // Skewed: channel "a" gets most of the traffic, the others are quieter.
    const std::size_t pick = random() % 10 < 6 ? 0 : 1 + random() % (channels.size() - 1);
    const std::string& channel = channels[pick];
    const std::uint64_t id = next_id++;
    const std::string text = std::to_string(id) + std::string(random() % 60, '.');
    window.record(id, channel, make_shared_bytes(text));
    published[channel].push_back(id);
    ASSERT_LE(window.messages(), kMaxMessages);
    ASSERT_LE(window.bytes(), kMaxBytes);

    const std::string& asked = channels[random() % channels.size()];
    const std::uint64_t last = id > 40 ? id - 1 - random() % 40 : random() % (id + 1);
    const ReplayedMessages replay = window.since(last, exactly(asked));
    std::vector<std::uint64_t> got;
    for (const SharedBytes& line : replay.lines) got.push_back(std::stoull(*line));
    ASSERT_TRUE(std::is_sorted(got.begin(), got.end()));
    std::vector<std::uint64_t> owed;
    for (std::uint64_t kept : published[asked]) {
      if (kept > last) owed.push_back(kept);
    }
    // Never more than was owed, and a gap exactly when something owed is missing.
    ASSERT_TRUE(std::includes(owed.begin(), owed.end(), got.begin(), got.end()));
    ASSERT_EQ(replay.gap, got != owed)
        << "step " << step << " channel " << asked << " last " << last;
  }
}

// With many more channels than the window keeps names of, a gap may be reported for nothing
// missed (names forgotten), but what is missed is always reported and nothing is owed twice.
TEST(ReplayWindow, ManyChannelsNeverHideAMissedMessage) {
  ReplayWindow window(16, 1000);
  std::mt19937 random(7);
  std::map<std::string, std::vector<std::uint64_t>> published;
  for (std::uint64_t id = 1; id < 20000; ++id) {
    const std::string channel = "c" + std::to_string(random() % 200);
    window.record(id, channel, make_shared_bytes(std::to_string(id)));
    published[channel].push_back(id);
    ASSERT_LE(window.messages(), 16u);
    const std::string asked = "c" + std::to_string(random() % 200);
    const std::uint64_t last = id > 100 ? id - 1 - random() % 100 : 0;
    const ReplayedMessages replay = window.since(last, exactly(asked));
    std::vector<std::uint64_t> got;
    for (const SharedBytes& line : replay.lines) got.push_back(std::stoull(*line));
    std::vector<std::uint64_t> owed;
    for (std::uint64_t kept : published[asked]) {
      if (kept > last) owed.push_back(kept);
    }
    ASSERT_TRUE(std::includes(owed.begin(), owed.end(), got.begin(), got.end()));
    ASSERT_TRUE(replay.gap || got == owed) << "step " << id << " channel " << asked;
  }
}

}  // namespace
}  // namespace photon::core
