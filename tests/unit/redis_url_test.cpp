// The broker URL: accepted forms, refusals with clear messages, and the password never shown.
#include "broker/redis_url.hpp"

#include <gtest/gtest.h>

namespace photon::broker {
namespace {

RedisUrl parsed(std::string_view text) {
  auto result = parse_redis_url(text);
  if (auto* error = std::get_if<std::string>(&result)) ADD_FAILURE() << text << ": " << *error;
  return std::get_if<RedisUrl>(&result) ? std::get<RedisUrl>(result) : RedisUrl{};
}

std::string error_of(std::string_view text) {
  auto result = parse_redis_url(text);
  if (std::holds_alternative<RedisUrl>(result)) {
    ADD_FAILURE() << text << " was accepted";
    return {};
  }
  return std::get<std::string>(result);
}

TEST(RedisUrl, HostPortAndDefaults) {
  RedisUrl url = parsed("redis://cache.internal");
  EXPECT_EQ(url.host, "cache.internal");
  EXPECT_EQ(url.port, 6379);
  EXPECT_EQ(url.db, 0);
  EXPECT_FALSE(url.is_unix());
  EXPECT_TRUE(url.password.empty());
  EXPECT_EQ(url.redacted(), "redis://cache.internal:6379");

  url = parsed("redis://10.0.0.5:6380/3");
  EXPECT_EQ(url.host, "10.0.0.5");
  EXPECT_EQ(url.port, 6380);
  EXPECT_EQ(url.db, 3);
  EXPECT_EQ(parsed("redis://h:1/").db, 0);
}

TEST(RedisUrl, AUnixSocketsQueryIsReadWhateverElseItHolds) {
  EXPECT_EQ(parsed("unix:///run/redis.sock?x=1&db=4").db, 4);
  EXPECT_EQ(parsed("unix:///run/redis.sock?").db, 0);
  // An empty query before a fragment crashed Boost.URL 1.81's parameter iterator (found by
  // fuzz/redis_url_fuzzer).
  EXPECT_EQ(parsed("unix:///run/redis.sock?#").socket_path, "/run/redis.sock");
  EXPECT_NE(error_of("unix:///run/redis.sock?db").find("db must be a number"), std::string::npos);
  EXPECT_NE(error_of("unix:///run/redis.sock?db=x").find("db must be a number"), std::string::npos);
}

TEST(RedisUrl, CredentialsAreKeptButNeverShown) {
  RedisUrl url = parsed("redis://app:s3cret@h:6379/1");
  EXPECT_EQ(url.user, "app");
  EXPECT_EQ(url.password, "s3cret");
  EXPECT_EQ(url.redacted(), "redis://app:***@h:6379/1");

  url = parsed("redis://:s3cret@h");
  EXPECT_TRUE(url.user.empty());
  EXPECT_EQ(url.password, "s3cret");
  EXPECT_EQ(url.redacted(), "redis://:***@h:6379");
  // Percent-encoded passwords are decoded.
  EXPECT_EQ(parsed("redis://:p%40ss@h").password, "p@ss");
}

TEST(RedisUrl, Ipv6Host) {
  RedisUrl url = parsed("redis://[::1]:7000");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.redacted(), "redis://[::1]:7000");
}

TEST(RedisUrl, UnixSocket) {
  RedisUrl url = parsed("unix:///run/redis/redis.sock");
  EXPECT_TRUE(url.is_unix());
  EXPECT_EQ(url.socket_path, "/run/redis/redis.sock");
  EXPECT_EQ(url.redacted(), "unix:///run/redis/redis.sock");
  url = parsed("unix://:pw@/tmp/r.sock?db=2");
  EXPECT_EQ(url.socket_path, "/tmp/r.sock");
  EXPECT_EQ(url.db, 2);
  EXPECT_EQ(url.password, "pw");
  EXPECT_EQ(url.redacted(), "unix://:***@/tmp/r.sock?db=2");
}

TEST(RedisUrl, Refusals) {
  EXPECT_NE(error_of("localhost:6379").find("scheme"), std::string::npos);
  EXPECT_NE(error_of("http://h").find("unknown scheme \"http\""), std::string::npos);
  EXPECT_NE(error_of("rediss://h").find("TLS"), std::string::npos);
  EXPECT_NE(error_of("redis://h:0").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://h:65536").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://h:99999").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://h/abc").find("database number"), std::string::npos);
  EXPECT_NE(error_of("redis://h/-1").find("database number"), std::string::npos);
  EXPECT_NE(error_of("redis:///0").find("no host"), std::string::npos);
  EXPECT_NE(error_of("unix://").find("absolute path"), std::string::npos);
  EXPECT_NE(error_of("unix:///s?db=x").find("db"), std::string::npos);
  EXPECT_NE(error_of("not a url").find("expected redis://"), std::string::npos);
}

TEST(RedisUrl, ErrorsNeverRepeatThePassword) {
  for (const char* text :
       {"redis://:hunter2@h/x", "redis://u:hunter2@h:0", "unix://:hunter2@/s?db=q",
        "http://:hunter2@h", "redis://:hunter2@h:99999"}) {
    EXPECT_EQ(error_of(text).find("hunter2"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace photon::broker
