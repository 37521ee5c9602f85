// Unit tests of the output queue and its slow-consumer policy, on hand-moved time.
#include "net/output_queue.hpp"

#include <gtest/gtest.h>

namespace photon::net {
namespace {

using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

SharedBytes bytes(std::size_t count, char fill = 'x') {
  return make_shared_bytes(std::string(count, fill));
}

OutputLimits small_limits() { return {.hard_bytes = 1000, .soft_bytes = 100, .soft_duration = seconds(60)}; }

TEST(OutputQueue, HardLimitFailsAtOnce) {
  OutputQueue queue(small_limits());
  TimePoint now{};
  EXPECT_TRUE(queue.push(bytes(1000), now));
  EXPECT_FALSE(queue.push(bytes(1), now));
}

TEST(OutputQueue, SoftLimitFailsOnlyWhenHeldForTheWholeDuration) {
  OutputQueue queue(small_limits());
  TimePoint start{};
  EXPECT_TRUE(queue.push(bytes(150), start));
  EXPECT_TRUE(queue.push(bytes(1), start + seconds(59)));
  EXPECT_FALSE(queue.push(bytes(1), start + seconds(60)));
}

TEST(OutputQueue, DrainingBelowSoftLimitRestartsTheClock) {
  OutputQueue queue(small_limits());
  TimePoint start{};
  EXPECT_TRUE(queue.push(bytes(150), start));
  queue.consume(100);  // 50 left: under the soft limit
  EXPECT_TRUE(queue.push(bytes(100), start + seconds(59)));  // over again from 59 s
  EXPECT_TRUE(queue.push(bytes(1), start + seconds(118)));
  EXPECT_FALSE(queue.push(bytes(1), start + seconds(119)));
}

TEST(OutputQueue, GatherAndPartialConsumeKeepOrder) {
  OutputQueue queue(OutputLimits{});
  TimePoint now{};
  queue.push(make_shared_bytes("abc"), now);
  queue.push(make_shared_bytes("de"), now);
  queue.push(make_shared_bytes("fgh"), now);
  EXPECT_EQ(queue.bytes(), 8u);
  queue.consume(4);  // "abc" and "d"
  iovec vectors[4];
  ASSERT_EQ(queue.gather(vectors, 4), 2u);
  EXPECT_EQ(std::string(static_cast<char*>(vectors[0].iov_base), vectors[0].iov_len), "e");
  EXPECT_EQ(std::string(static_cast<char*>(vectors[1].iov_base), vectors[1].iov_len), "fgh");
  EXPECT_EQ(queue.gather(vectors, 1), 1u);
  queue.consume(4);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
}

TEST(OutputQueue, SharedLineIsNotCopied) {
  OutputQueue first(OutputLimits{}), second(OutputLimits{});
  SharedBytes line = make_shared_bytes("shared");
  first.push(line, TimePoint{});
  second.push(line, TimePoint{});
  iovec a, b;
  first.gather(&a, 1);
  second.gather(&b, 1);
  EXPECT_EQ(a.iov_base, b.iov_base);
}

}  // namespace
}  // namespace photon::net
