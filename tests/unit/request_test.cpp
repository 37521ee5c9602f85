// Unit tests of the protocol layer: request parsing, field validation and reply serialization.
#include "protocol/request.hpp"
#include "common/memory_release.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"
#include "request_mix.hpp"

#include <gtest/gtest.h>

namespace photon::protocol {
namespace {

RequestError parse_error(RequestParser& parser, std::string_view line) {
  ParseResult result = parser.parse(line);
  EXPECT_TRUE(std::holds_alternative<RequestError>(result)) << line;
  return std::holds_alternative<RequestError>(result) ? std::get<RequestError>(result)
                                                      : RequestError{};
}

TEST(RequestParser, ParsesTypeAndId) {
  RequestParser parser(64);
  ParseResult result =
      parser.parse(R"({"type":"subscribe","id":"s1","channel":"board:a","extra":1})");
  ASSERT_TRUE(std::holds_alternative<Request>(result));
  const Request& request = std::get<Request>(result);
  EXPECT_EQ(request.type, "subscribe");
  EXPECT_EQ(request.id, "s1");
  EXPECT_EQ(request.string_field("channel"), "board:a");
}

TEST(RequestParser, MalformedJsonGetsUnknownId) {
  RequestParser parser(64);
  RequestError error = parse_error(parser, R"({"type":"ping","id":"x")");
  EXPECT_EQ(error.id, "unknown");
  EXPECT_NE(error.message.find("invalid JSON"), std::string::npos);
}

TEST(RequestParser, NonObjectIsRefused) {
  RequestParser parser(64);
  EXPECT_EQ(parse_error(parser, "[1,2]").message, "request must be a JSON object");
  EXPECT_EQ(parse_error(parser, "42").message, "request must be a JSON object");
}

TEST(RequestParser, MissingOrWrongTypeEchoesStringId) {
  RequestParser parser(64);
  RequestError error = parse_error(parser, R"({"id":"abc"})");
  EXPECT_EQ(error.id, "abc");
  EXPECT_EQ(error.message, R"j(request requires "type" (a string))j");
  error = parse_error(parser, R"({"type":7,"id":"abc"})");
  EXPECT_EQ(error.id, "abc");
}

TEST(RequestParser, NonStringIdIsRefusedWithUnknown) {
  RequestParser parser(64);
  RequestError error = parse_error(parser, R"({"type":"ping","id":5})");
  EXPECT_EQ(error.id, "unknown");
  EXPECT_EQ(error.message, R"j(request requires "id" (a string))j");
  EXPECT_EQ(parse_error(parser, R"({"type":"ping"})").id, "unknown");
}

TEST(RequestParser, OverLongIdIsNeverEchoed) {
  RequestParser parser(64);
  const std::string long_id(300, 'i');
  EXPECT_EQ(parse_error(parser, R"({"id":")" + long_id + "\"}").id, "unknown");
  EXPECT_EQ(parse_error(parser, R"({"type":"ping","id":")" + long_id + "\"}").id, "unknown");
}

TEST(RequestParser, UnknownTypeIsNamedShort) {
  EXPECT_EQ(unknown_type_message("lokc"), R"(unknown request type "lokc")");
  EXPECT_EQ(unknown_type_message(std::string(100, 'x')),
            "unknown request type \"" + std::string(64, 'x') + "\"");
}

TEST(RequestParser, DepthLimitIsEnforced) {
  RequestParser parser(4);
  EXPECT_TRUE(
      std::holds_alternative<Request>(parser.parse(R"({"type":"ping","id":"a","x":[[1]]})")));
  RequestError error = parse_error(parser, R"({"type":"ping","id":"a","x":[[[[[1]]]]]})");
  EXPECT_EQ(error.message, "invalid JSON: nesting is too deep");
}

TEST(RequestParser, InvalidUtf8IsRefused) {
  RequestParser parser(64);
  RequestError error = parse_error(parser, "{\"type\":\"ping\",\"id\":\"\xff\"}");
  EXPECT_NE(error.message.find("invalid JSON"), std::string::npos);
}

TEST(RequestParser, ReusesItselfAcrossLargeAndSmallRequests) {
  RequestParser parser(64);
  std::string big = R"({"type":"publish","id":"b","channel":"c","message":")" +
                    std::string(100000, 'x') + R"("})";
  ASSERT_TRUE(std::holds_alternative<Request>(parser.parse(big)));
  ParseResult small = parser.parse(R"({"type":"ping","id":"s"})");
  ASSERT_TRUE(std::holds_alternative<Request>(small));
  EXPECT_EQ(std::get<Request>(small).id, "s");
}

std::optional<std::string> validate(std::string_view line, std::vector<Field> required,
                                    std::vector<Field> optional = {}) {
  static RequestParser parser(64);
  ParseResult result = parser.parse(line);
  return validate_fields(std::get<Request>(result), required, optional);
}

TEST(ValidateFields, ChannelRules) {
  EXPECT_FALSE(
      validate(R"({"type":"subscribe","id":"a","channel":"board:a"})", {Field::kChannelPattern}));
  EXPECT_FALSE(
      validate(R"({"type":"subscribe","id":"a","channel":"board:*"})", {Field::kChannelPattern}));
  EXPECT_FALSE(
      validate(R"({"type":"subscribe","id":"a","channel":"*"})", {Field::kChannelPattern}));
  EXPECT_EQ(validate(R"({"type":"subscribe","id":"a"})", {Field::kChannelPattern}),
            R"("channel" must be a non-empty string)");
  EXPECT_EQ(validate(R"({"type":"subscribe","id":"a","channel":""})", {Field::kChannelPattern}),
            R"("channel" must be a non-empty string)");
  EXPECT_EQ(validate(R"({"type":"subscribe","id":"a","channel":12})", {Field::kChannelPattern}),
            R"("channel" must be a non-empty string)");
  EXPECT_EQ(validate(R"({"type":"subscribe","id":"a","channel":"a*b"})", {Field::kChannelPattern}),
            R"("channel" may contain '*' only as its last character)");
  EXPECT_EQ(validate(R"({"type":"publish","id":"a","channel":"a*"})", {Field::kChannel}),
            R"("channel" of a publish may not contain '*')");
  EXPECT_EQ(validate(R"({"type":"publish","id":"a","channel":"a\nb"})", {Field::kChannel}),
            R"("channel" contains a control character or a line separator)");
  const std::string long_channel(257, 'c');
  EXPECT_EQ(validate(R"({"type":"publish","id":"a","channel":")" + long_channel + "\"}",
                     {Field::kChannel}),
            R"("channel" is longer than 256 bytes)");
  EXPECT_FALSE(validate(R"({"type":"publish","id":"a","channel":")" + std::string(256, 'c') + "\"}",
                        {Field::kChannel}));
}

// C0 controls, DEL, C1 controls (U+0080..U+009F) and U+2028/U+2029 are refused in every name; their
// neighbours (U+00A0, U+2027, U+202A) and other non-ASCII text are names like any other.
TEST(ValidateFields, NamesRefuseC0C1AndLineSeparators) {
  const std::vector<std::string> refused = {"\\u0000", "\\u001f", "\\u007f", "\\u0080",
                                            "\\u0085", "\\u009f", "\\u2028", "\\u2029"};
  const std::vector<std::string> accepted = {"\\u00a0", "\\u2027", "\\u202a", "\\u00e9",
                                             "\\ud83d\\ude00"};
  struct Case {
    const char* type;
    const char* key;
    Field field;
    std::string_view message;
  };
  const std::vector<Case> cases = {
      {"publish", "channel", Field::kChannel, messages::kChannelControl},
      {"subscribe", "channel", Field::kChannelPattern, messages::kChannelControl},
      {"lock", "lockName", Field::kLockName, messages::kLockNameControl},
      {"command", "method", Field::kMethod, messages::kMethodControl},
      {"unschedule", "jobId", Field::kJobId, messages::kJobIdControl},
  };
  for (const Case& c : cases) {
    for (const std::string& escape : refused) {
      const std::string line = std::string(R"({"type":")") + c.type + R"(","id":"a",")" + c.key +
                               R"(":"x)" + escape + R"(y"})";
      EXPECT_EQ(validate(line, {c.field}), std::string(c.message)) << line;
    }
    for (const std::string& escape : accepted) {
      const std::string line = std::string(R"({"type":")") + c.type + R"(","id":"a",")" + c.key +
                               R"(":"x)" + escape + R"(y"})";
      EXPECT_FALSE(validate(line, {c.field})) << line;
    }
  }
  EXPECT_TRUE(channel_name_error("a\u2029b", false));
  EXPECT_TRUE(channel_name_error("a\xc2\x85", false));
  EXPECT_FALSE(channel_name_error("caf\xc3\xa9", false));
}

TEST(ValidateFields, Message) {
  EXPECT_EQ(
      validate(R"({"type":"publish","id":"a","channel":"c"})", {Field::kChannel, Field::kMessage}),
      R"(publish requires "message")");
  EXPECT_FALSE(validate(R"({"type":"publish","id":"a","channel":"c","message":null})",
                        {Field::kChannel, Field::kMessage}));
}

TEST(RequestParser, SessionIdMustBeAShortStringOnEveryRequest) {
  RequestParser parser(64);
  EXPECT_TRUE(std::holds_alternative<Request>(
      parser.parse(R"({"type":"ping","id":"a","sessionId":"cli-1-ab"})")));
  RequestError error = parse_error(parser, R"({"type":"ping","id":"a","sessionId":3})");
  EXPECT_EQ(error.id, "a");
  EXPECT_EQ(error.message, R"("sessionId" must be a string)");
  error = parse_error(parser,
                      R"({"type":"status","id":"a","sessionId":")" + std::string(257, 's') + "\"}");
  EXPECT_EQ(error.message, R"("sessionId" is longer than 256 bytes)");
}

TEST(Reply, LinesAreSingleJsonObjectsEndingInNewline) {
  boost::json::object data{{"subscribed", true}, {"channel", "x"}};
  EXPECT_EQ(result_line("i\"d", true, data),
            "{\"type\":\"result\",\"id\":\"i\\\"d\",\"success\":true,\"data\":{\"subscribed\":true,"
            "\"channel\":\"x\"}}\n");
  EXPECT_EQ(error_line("unknown", "bad \"x\""),
            "{\"type\":\"error\",\"id\":\"unknown\",\"error\":\"bad \\\"x\\\"\"}\n");
  EXPECT_EQ(pong_line("p"), "{\"type\":\"pong\",\"id\":\"p\"}\n");
  EXPECT_EQ(
      channel_message_line(7, "a\n", "e-7", boost::json::value{1, 2}),
      "{\"type\":\"channel_message\",\"id\":\"ch_7\",\"channel\":\"a\\n\",\"eventId\":\"e-7\","
      "\"message\":[1,2]}\n");
  EXPECT_EQ(replayed_line(channel_message_line(7, "a", "e-7", boost::json::value(1))),
            "{\"type\":\"channel_message\",\"id\":\"ch_7\",\"channel\":\"a\",\"eventId\":\"e-7\","
            "\"message\":1,\"replay\":true}\n");
  EXPECT_EQ(
      boost::json::parse(published_line("q", "c", 3, "e-9")),
      boost::json::parse(
          R"({"type":"result","id":"q","success":true,"data":{"published":true,"channel":"c","delivered":3,"eventId":"e-9"}})"));
}

// A line waits in every subscriber's queue, and the queues' limits count its length: its
// allocation must stay near that length (it was 4 KiB for any message that is not a string).
TEST(Reply, ChannelMessageLinesAllocateAboutTheirLength) {
  const boost::json::value small = boost::json::parse(R"({"task":7,"column":"Done"})");
  const std::string line = channel_message_line(1, "board:main", "e-1", small);
  EXPECT_LT(line.capacity(), 2 * line.size() + 64)
      << line.size() << " bytes in " << line.capacity();
  boost::json::array big;
  for (int i = 0; i < 5000; ++i) big.emplace_back("item");
  const std::string long_line = channel_message_line(2, "c", "e-2", big);
  EXPECT_GT(long_line.size(), 5000u * 6);
  EXPECT_LT(long_line.capacity(), 2 * long_line.size() + 64);
  EXPECT_EQ(boost::json::parse(long_line).at("message"), big);
}

// Regression: the arena's upstream block size doubled with every request that outgrew the fixed
// buffer and was never reset, so about the 17th request of 64 KiB failed with bad_alloc.
TEST(RequestParser, ManyMediumRequestsInARowAreParsed) {
  RequestParser parser(64);
  const std::string payload(64 * 1024, 'x');
  for (int i = 0; i < 200; ++i) {
    const std::string id = "p" + std::to_string(i);
    ParseResult result = parser.parse(R"({"type":"publish","id":")" + id +
                                      R"(","channel":"c","message":")" + payload + "\"}");
    ASSERT_TRUE(std::holds_alternative<Request>(result)) << "request " << i;
    EXPECT_EQ(std::get<Request>(result).id, id);
  }
}

// Any sequence of request sizes (0 B to 1 MiB of payload, mixed shapes) is parsed, and nothing a
// large request borrowed from the heap is kept once a small one follows.
TEST(RequestParser, AnySequenceOfSizesIsParsedAndNothingIsCarried) {
  RequestParser parser(64);
  testing::RequestMix mix(20261207);
  for (int i = 0; i < 10000; ++i) {
    const testing::MixedRequest sent = mix.next();
    ParseResult result = parser.parse(sent.line);
    ASSERT_TRUE(std::holds_alternative<Request>(result))
        << "request " << i << " of " << sent.line.size()
        << " bytes: " << std::get<RequestError>(result).message;
    const Request& request = std::get<Request>(result);
    ASSERT_EQ(request.id, sent.id);
    ASSERT_EQ(request.type, sent.type);
    if (sent.type == "publish") {
      const boost::json::value& message = *request.find("message");
      if (message.is_string()) {
        ASSERT_EQ(message.get_string().size(), sent.payload_bytes);
      }
    }
    if (i % 100 == 99) {
      ASSERT_TRUE(std::holds_alternative<Request>(parser.parse(R"({"type":"ping","id":"p"})")));
      ASSERT_EQ(parser.heap_blocks(), 0u) << "after request " << i;
    }
  }
}

// What large requests borrowed is handed back to the system once it adds up to a megabyte (one
// release asked for, however many requests made it up), as after a large output queue.
TEST(RequestParser, LargeRequestsAskForOneMemoryRelease) {
  int asked = 0;
  set_memory_release_scheduler([&] { ++asked; });
  RequestParser parser(64);
  const std::string large = R"({"type":"publish","id":"p","channel":"c","message":")" +
                            std::string(300 * 1024, 'x') + "\"}";
  const std::string small = R"({"type":"ping","id":"p"})";
  ASSERT_TRUE(std::holds_alternative<Request>(parser.parse(large)));
  ASSERT_TRUE(std::holds_alternative<Request>(parser.parse(small)));
  EXPECT_EQ(asked, 0);  // one such request borrows less than a megabyte
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(std::holds_alternative<Request>(parser.parse(large)));
  ASSERT_TRUE(std::holds_alternative<Request>(parser.parse(small)));
  EXPECT_EQ(asked, 1);
  EXPECT_GE(release_freed_memory(), kReleaseAfterBytes);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(std::holds_alternative<Request>(parser.parse(small)));
  EXPECT_EQ(asked, 1);  // small requests borrow nothing
  set_memory_release_scheduler({});
  release_freed_memory();
}

}  // namespace
}  // namespace photon::protocol
