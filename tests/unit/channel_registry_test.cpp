// Unit tests of channel subscriptions, wildcard matching and fan-out.
#include "channels/channel_registry.hpp"

#include <gtest/gtest.h>

namespace photon::core {
namespace {

class RecordingSubscriber final : public Subscriber {
 public:
  void deliver(const SharedBytes& line) override { received.push_back(line); }
  std::vector<SharedBytes> received;
};

SharedBytes publish(ChannelRegistry& registry, std::string_view channel,
                    const Subscriber* publisher = nullptr, int* built = nullptr) {
  SharedBytes line = make_shared_bytes(std::string(channel));
  registry.publish(channel, publisher, [&] {
    if (built) ++*built;
    return line;
  });
  return line;
}

constexpr std::size_t kNoLimit = 1000;

TEST(ChannelRegistry, ExactSubscriptionReceivesOnlyItsChannel) {
  ChannelRegistry registry;
  RecordingSubscriber a;
  registry.subscribe(a, "board:a", kNoLimit);
  publish(registry, "board:a");
  publish(registry, "board:ab");
  publish(registry, "board:");
  ASSERT_EQ(a.received.size(), 1u);
  EXPECT_EQ(*a.received[0], "board:a");
}

TEST(ChannelRegistry, WildcardMatchesPrefixAtAnyDepth) {
  ChannelRegistry registry;
  RecordingSubscriber board, everything;
  registry.subscribe(board, "board:*", kNoLimit);
  registry.subscribe(everything, "*", kNoLimit);
  for (auto channel : {"board:a", "board:a:b", "board:", "boar", "other"})
    publish(registry, channel);
  std::vector<std::string> got;
  for (auto& line : board.received) got.push_back(*line);
  EXPECT_EQ(got, (std::vector<std::string>{"board:a", "board:a:b", "board:"}));
  EXPECT_EQ(everything.received.size(), 5u);
}

TEST(ChannelRegistry, OneCopyPerSubscriberHoweverManySubscriptionsMatch) {
  ChannelRegistry registry;
  RecordingSubscriber a;
  registry.subscribe(a, "board:a", kNoLimit);
  registry.subscribe(a, "board:*", kNoLimit);
  registry.subscribe(a, "b*", kNoLimit);
  registry.subscribe(a, "*", kNoLimit);
  publish(registry, "board:a");
  EXPECT_EQ(a.received.size(), 1u);
  publish(registry, "board:a");
  EXPECT_EQ(a.received.size(), 2u);
}

TEST(ChannelRegistry, PublisherIsExcludedAndLineBuiltOnceAndShared) {
  ChannelRegistry registry;
  RecordingSubscriber publisher, a, b;
  for (auto* s : {&publisher, &a, &b}) registry.subscribe(*s, "c", kNoLimit);
  int built = 0;
  publish(registry, "c", &publisher, &built);
  EXPECT_EQ(built, 1);
  EXPECT_TRUE(publisher.received.empty());
  ASSERT_EQ(a.received.size(), 1u);
  EXPECT_EQ(a.received[0].get(), b.received[0].get());  // the same bytes, not a copy
  EXPECT_EQ(registry.delivered(), 2u);
  EXPECT_EQ(registry.published(), 1u);
}

TEST(ChannelRegistry, NoRecipientBuildsNothing) {
  ChannelRegistry registry;
  int built = 0;
  publish(registry, "nobody", nullptr, &built);
  EXPECT_EQ(built, 0);
}

TEST(ChannelRegistry, SubscribeTwiceIsOneSubscription) {
  ChannelRegistry registry;
  RecordingSubscriber a;
  EXPECT_EQ(registry.subscribe(a, "c", kNoLimit), ChannelRegistry::SubscribeOutcome::kAdded);
  EXPECT_EQ(registry.subscribe(a, "c", kNoLimit),
            ChannelRegistry::SubscribeOutcome::kAlreadySubscribed);
  EXPECT_EQ(registry.subscription_count(a), 1u);
  EXPECT_TRUE(registry.unsubscribe(a, "c"));
  publish(registry, "c");
  EXPECT_TRUE(a.received.empty());
  EXPECT_FALSE(registry.unsubscribe(a, "c"));
}

TEST(ChannelRegistry, LimitCountsSubscriptionsPerSubscriber) {
  ChannelRegistry registry;
  RecordingSubscriber a, b;
  EXPECT_EQ(registry.subscribe(a, "x", 2), ChannelRegistry::SubscribeOutcome::kAdded);
  EXPECT_EQ(registry.subscribe(a, "y*", 2), ChannelRegistry::SubscribeOutcome::kAdded);
  EXPECT_EQ(registry.subscribe(a, "z", 2), ChannelRegistry::SubscribeOutcome::kLimitReached);
  EXPECT_EQ(registry.subscribe(b, "z", 2), ChannelRegistry::SubscribeOutcome::kAdded);
}

TEST(ChannelRegistry, TotalLimitCountsEverySubscriberAndFreesOnUnsubscribe) {
  ChannelRegistry registry(3);
  RecordingSubscriber a, b;
  registry.subscribe(a, "x", kNoLimit);
  registry.subscribe(a, "y", kNoLimit);
  EXPECT_EQ(registry.subscribe(b, "x", kNoLimit), ChannelRegistry::SubscribeOutcome::kAdded);
  EXPECT_EQ(registry.subscribe(b, "z", kNoLimit),
            ChannelRegistry::SubscribeOutcome::kTotalLimitReached);
  registry.unsubscribe_all(a);
  EXPECT_EQ(registry.subscribe(b, "z", kNoLimit), ChannelRegistry::SubscribeOutcome::kAdded);
}

TEST(ChannelRegistry, CountsThePublishesThatMatchedEachChannelAndPattern) {
  ChannelRegistry registry;
  RecordingSubscriber a, b;
  registry.subscribe(a, "board:*", kNoLimit);
  registry.subscribe(b, "board:a", kNoLimit);
  int built = 0;
  publish(registry, "board:a", nullptr, &built);
  publish(registry, "board:b", nullptr, &built);
  publish(registry, "board:a", &b, &built);  // matched even though its subscriber published it
  publish(registry, "other", nullptr, &built);
  auto counts = registry.channel_counts();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].channel, "board:*");
  EXPECT_EQ(counts[0].messages, 3u);
  EXPECT_EQ(counts[1].channel, "board:a");
  EXPECT_EQ(counts[1].messages, 2u);
  // A channel nobody subscribes to any more starts again from zero.
  registry.unsubscribe_all(b);
  registry.subscribe(b, "board:a", kNoLimit);
  EXPECT_EQ(registry.channel_counts()[1].messages, 0u);
}

TEST(ChannelRegistry, UnsubscribeAllRemovesEveryTraceAndCounts) {
  ChannelRegistry registry;
  RecordingSubscriber a, b;
  registry.subscribe(a, "board:*", kNoLimit);
  registry.subscribe(a, "x", kNoLimit);
  registry.subscribe(b, "board:*", kNoLimit);
  auto counts = registry.channel_counts();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].channel, "board:*");
  EXPECT_EQ(counts[0].subscribers, 2u);
  EXPECT_EQ(counts[1].channel, "x");
  registry.unsubscribe_all(a);
  registry.unsubscribe_all(b);
  EXPECT_TRUE(registry.channel_counts().empty());
  int built = 0;
  publish(registry, "board:q", nullptr, &built);
  EXPECT_EQ(built, 0);
}

TEST(ChannelRegistry, PatternsOfManyLengthsAllMatch) {
  ChannelRegistry registry;
  std::vector<std::unique_ptr<RecordingSubscriber>> subscribers;
  const std::string channel = "a:b:c:d";
  for (std::size_t length = 0; length <= channel.size(); ++length) {
    subscribers.push_back(std::make_unique<RecordingSubscriber>());
    registry.subscribe(*subscribers.back(), channel.substr(0, length) + "*", kNoLimit);
  }
  publish(registry, channel);
  for (auto& subscriber : subscribers) EXPECT_EQ(subscriber->received.size(), 1u);
}

}  // namespace
}  // namespace photon::core
