// Unit tests of the output queue and its slow-consumer policy, on hand-moved time.
#include "net/output_queue.hpp"

#include "common/memory_release.hpp"

#include "fake_clock.hpp"

#include <gtest/gtest.h>

namespace photon::net {
namespace {

using std::chrono::seconds;
using testing::FakeClock;

SharedBytes bytes(std::size_t count, char fill = 'x') {
  return make_shared_bytes(std::string(count, fill));
}

OutputLimits small_limits() {
  return {.hard_bytes = 1000, .soft_bytes = 100, .soft_duration = seconds(60)};
}

TEST(OutputQueue, HardLimitFailsAtOnce) {
  FakeClock clock;
  OutputQueue queue(small_limits(), clock);
  EXPECT_TRUE(queue.push(bytes(1000)));
  EXPECT_FALSE(queue.push(bytes(1)));
}

TEST(OutputQueue, SoftLimitFailsOnlyWhenHeldForTheWholeDuration) {
  FakeClock clock;
  OutputQueue queue(small_limits(), clock);
  EXPECT_TRUE(queue.push(bytes(150)));
  clock.advance(seconds(59));
  EXPECT_TRUE(queue.push(bytes(1)));
  clock.advance(seconds(1));
  EXPECT_FALSE(queue.push(bytes(1)));
}

TEST(OutputQueue, SoftDurationRunsOnTheSteadyClockNotTheWallClock) {
  FakeClock clock;
  OutputQueue queue(small_limits(), clock);
  EXPECT_TRUE(queue.push(bytes(150)));
  clock.jump_wall_clock(std::chrono::hours(24));
  EXPECT_TRUE(queue.push(bytes(1)));
}

TEST(OutputQueue, DrainingBelowSoftLimitRestartsTheClock) {
  FakeClock clock;
  OutputQueue queue(small_limits(), clock);
  EXPECT_TRUE(queue.push(bytes(150)));
  queue.consume(100);  // 50 left: under the soft limit
  clock.advance(seconds(59));
  EXPECT_TRUE(queue.push(bytes(100)));  // over again from 59 s
  clock.advance(seconds(59));
  EXPECT_TRUE(queue.push(bytes(1)));
  clock.advance(seconds(1));
  EXPECT_FALSE(queue.push(bytes(1)));
}

std::string text(const iovec& vector) {
  return std::string(static_cast<const char*>(vector.iov_base), vector.iov_len);
}

TEST(OutputQueue, OwnedLinesCoalesceSharedOnesStandAloneInOrder) {
  FakeClock clock;
  OutputQueue queue(OutputLimits{}, clock);
  const std::string large(OutputQueue::kCopyLimit + 1, 'f');
  queue.push(std::string("abc"));
  queue.push(std::string("de"));
  queue.push(make_shared_bytes("shared"));
  queue.push(std::string(large));
  queue.push(std::string("gh"));
  EXPECT_EQ(queue.bytes(), 13 + large.size());
  iovec vectors[8];
  // The large owned line becomes a chunk of its own, which later small lines then extend.
  ASSERT_EQ(queue.gather(vectors, 8), 3u);
  EXPECT_EQ(text(vectors[0]), "abcde");
  EXPECT_EQ(text(vectors[1]), "shared");
  EXPECT_EQ(text(vectors[2]), large + "gh");

  queue.consume(4);  // "abcd"
  ASSERT_EQ(queue.gather(vectors, 8), 3u);
  EXPECT_EQ(text(vectors[0]), "e");
  queue.consume(1 + 6 + 10);  // "e", "shared" and part of the large line
  ASSERT_EQ(queue.gather(vectors, 1), 1u);
  EXPECT_EQ(vectors[0].iov_len, large.size() - 10 + 2);
  queue.consume(large.size() - 10 + 2);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
}

TEST(OutputQueue, AppendingToAPartlyWrittenTailKeepsItsOffset) {
  FakeClock clock;
  OutputQueue queue(OutputLimits{}, clock);
  queue.push(std::string("hello "));
  queue.consume(3);
  queue.push(std::string(5000, 'w').substr(0, 5) + "!");
  iovec vector;
  ASSERT_EQ(queue.gather(&vector, 1), 1u);
  EXPECT_EQ(text(vector), "lo wwwww!");
}

TEST(OutputQueue, TailBuffersAreCapped) {
  FakeClock clock;
  OutputQueue queue(OutputLimits{}, clock);
  const std::string line(1000, 'x');
  for (int i = 0; i < 200; ++i) queue.push(std::string(line));
  iovec vectors[8];
  const std::size_t count = queue.gather(vectors, 8);
  EXPECT_EQ(count, 4u);  // 200 000 bytes in tails of at most 64 KiB
  for (std::size_t i = 0; i < count; ++i) EXPECT_LE(vectors[i].iov_len, OutputQueue::kTailCapacity);
}

TEST(OutputQueue, SharedLineIsReferencedNotCopied) {
  FakeClock clock;
  OutputQueue first(OutputLimits{}, clock), second(OutputLimits{}, clock);
  SharedBytes line = make_shared_bytes("fan-out");
  first.push(line);
  second.push(line);
  iovec a, b;
  first.gather(&a, 1);
  second.gather(&b, 1);
  EXPECT_EQ(a.iov_base, line->data());
  EXPECT_EQ(b.iov_base, line->data());
}

// A queue that held a megabyte or more asks for one memory release when it drains, and when it is
// dropped with its lines (a slow consumer cut); small queues never do, and a release requested
// but not yet run is not requested again.
TEST(OutputQueue, LargeDrainsAndDropsAskForOneMemoryRelease) {
  FakeClock clock;
  const OutputLimits limits{
      .hard_bytes = 32u << 20, .soft_bytes = 8u << 20, .soft_duration = seconds(60)};
  int requests = 0;
  set_memory_release_scheduler([&] { ++requests; });

  OutputQueue small(limits, clock);
  ASSERT_TRUE(small.push(bytes(kReleaseAfterBytes - 1)));
  small.consume(kReleaseAfterBytes - 1);
  EXPECT_EQ(requests, 0);

  OutputQueue drained(limits, clock);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(drained.push(bytes(512 * 1024)));
  drained.consume(1u << 20);
  EXPECT_EQ(requests, 0) << "not drained yet";
  drained.consume(1u << 20);
  EXPECT_EQ(requests, 1);
  // Dropped with its lines: a second large free while the release is pending asks nothing more.
  OutputQueue dropped(limits, clock);
  ASSERT_TRUE(dropped.push(bytes(3u << 20)));
  dropped = OutputQueue(limits, clock);
  EXPECT_EQ(requests, 1);
  EXPECT_EQ(release_freed_memory(), (2u << 20) + (3u << 20));
  {
    OutputQueue destroyed(limits, clock);
    ASSERT_TRUE(destroyed.push(bytes(2u << 20)));
  }
  EXPECT_EQ(requests, 2) << "asked again after the release ran";
  EXPECT_EQ(release_freed_memory(), 2u << 20);
  set_memory_release_scheduler(nullptr);
}

}  // namespace
}  // namespace photon::net
