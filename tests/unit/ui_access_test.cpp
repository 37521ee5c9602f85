// The browser listener's access rules: which Host and Origin names pass, how the token is
// checked, how targets and event ids are read.
#include "ui/ui_access.hpp"

#include <gtest/gtest.h>

namespace {

using photon::ui::AccessPolicy;
using photon::ui::check_host_and_origin;
using photon::ui::parse_target;
using photon::ui::token_matches;

AccessPolicy policy() { return {8080, "secret-token", {"http://localhost:5173"}}; }

TEST(UiAccess, LoopbackHostsWithThisPortOrNonePass) {
  for (const char* host : {"127.0.0.1:8080", "localhost:8080", "LocalHost:8080", "[::1]:8080",
                           "127.0.0.1", "localhost", "[::1]"}) {
    EXPECT_FALSE(check_host_and_origin(policy(), host, std::nullopt)) << host;
  }
}

TEST(UiAccess, OtherHostsAreRefusedAsRebinding) {
  for (const char* host :
       {"evil.example", "evil.example:8080", "127.0.0.1.nip.io:8080", "localhost.evil.example",
        "127.0.0.1:8081", "127.0.0.2:8080", "[::2]:8080", "[::1", "", ":8080", "localhost:80",
        "0.0.0.0:8080", "[::1]8080"}) {
    auto refusal = check_host_and_origin(policy(), host, std::nullopt);
    ASSERT_TRUE(refusal) << host;
    EXPECT_EQ(refusal->status, 403u);
    EXPECT_NE(refusal->message.find("loopback"), std::string::npos);
  }
  auto missing = check_host_and_origin(policy(), std::nullopt, std::nullopt);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->message, "a Host header is required");
}

TEST(UiAccess, OnlyTheListenersOwnAndAllowedOriginsPass) {
  for (const char* origin :
       {"http://127.0.0.1:8080", "http://localhost:8080", "HTTP://LOCALHOST:8080",
        "http://[::1]:8080", "http://localhost:5173"}) {
    EXPECT_FALSE(check_host_and_origin(policy(), "localhost:8080", origin)) << origin;
  }
  for (const char* origin :
       {"http://evil.example", "null", "http://localhost:8081", "https://localhost:8080",
        "http://localhost:8080/", "http://localhost", "http://localhost:51730", ""}) {
    auto refusal = check_host_and_origin(policy(), "localhost:8080", origin);
    ASSERT_TRUE(refusal) << origin;
    EXPECT_EQ(refusal->status, 403u);
    EXPECT_NE(refusal->message.find("--ui-allow-origin"), std::string::npos);
  }
}

TEST(UiAccess, TheTokenComesAsABearerHeaderOrAQueryParameter) {
  EXPECT_TRUE(token_matches(policy(), "secret-token", std::nullopt));
  EXPECT_TRUE(token_matches(policy(), "", "Bearer secret-token"));
  EXPECT_TRUE(token_matches(policy(), "", "bearer secret-token"));
  EXPECT_TRUE(token_matches(policy(), "wrong", "Bearer secret-token"));
  EXPECT_FALSE(token_matches(policy(), "", std::nullopt));
  EXPECT_FALSE(token_matches(policy(), "secret-toke", std::nullopt));
  EXPECT_FALSE(token_matches(policy(), "secret-token2", std::nullopt));
  EXPECT_FALSE(token_matches(policy(), "", "Basic secret-token"));
  EXPECT_FALSE(token_matches(policy(), "", "Bearer "));
  EXPECT_FALSE(token_matches(policy(), "", "Bearer  secret-token"));
  AccessPolicy no_token = policy();
  no_token.token.clear();
  EXPECT_FALSE(token_matches(no_token, "", "Bearer "));
  EXPECT_FALSE(token_matches(no_token, "", std::nullopt));
}

TEST(UiAccess, TargetsAreDecoded) {
  auto target = parse_target("/events?channel=board%3A*&channel=alerts&token=t%2B1&lastEventId=42");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->path, "/events");
  EXPECT_EQ(target->channels, (std::vector<std::string>{"board:*", "alerts"}));
  EXPECT_EQ(target->token, "t+1");
  EXPECT_EQ(target->last_event_id, "42");
  EXPECT_EQ(parse_target("/a%2Fb")->path, "/a/b");
  EXPECT_FALSE(parse_target("http://evil.example/"));
  EXPECT_FALSE(parse_target("*"));
  EXPECT_FALSE(parse_target("/%zz"));
}

}  // namespace
