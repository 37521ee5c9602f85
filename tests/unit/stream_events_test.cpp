// The dashboard's event streams pick their events out of the daemon's own lines (ui/ tells the
// transport how; net/ knows no protocol): a channel message carries its id, a gap and a refusal
// are named events (the refusal ends the stream), and replies are not for the browser.
#include "ui/stream_events.hpp"

#include "protocol/reply.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>

namespace photon::ui {
namespace {

// A line as the dispatcher sends it, without its newline (as the stream hands it over).
std::string_view unterminated(const std::string& line) {
  return std::string_view(line).substr(0, line.size() - 1);
}

TEST(StreamEvents, ChannelMessageIsAnEventWithItsEventId) {
  const std::string line = protocol::channel_message_line(4711, "board:1", "0123456789ab-4711",
                                                          boost::json::object{{"card", 3}});
  const auto event = stream_event_of(unterminated(line));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->id, "0123456789ab-4711");
  EXPECT_EQ(event->name, "");
  EXPECT_FALSE(event->last);
}

TEST(StreamEvents, TheEventIdIsFoundWhateverTheChannelAndMessageHold) {
  // A channel or message that spells the member is text inside a string: its quotes are escaped.
  const std::string tricky = R"(x","eventId":"fake)";
  const std::string line = protocol::channel_message_line(
      1, tricky, "0123456789ab-1", boost::json::object{{"eventId", "fake"}, {"s", tricky}});
  const auto event = stream_event_of(unterminated(line));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->id, "0123456789ab-1");
}

TEST(StreamEvents, RefusedSubscribeIsALastPhotonErrorEvent) {
  const std::string line = protocol::error_line("events-0-0", "channel name too long");
  const auto event = stream_event_of(unterminated(line));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->name, "photon-error");
  EXPECT_EQ(event->id, "");
  EXPECT_TRUE(event->last);
}

TEST(StreamEvents, PhotonCoreStreamsCarryTheMessageInPhotonCoresForm) {
  const core::PhotonCoreSender sender{.source = "kanban", .now_millis = 99};
  const std::string line = protocol::channel_message_line(
      7, "board:1", "e-7", boost::json::object{{"event", "moved"}, {"data", 3}});
  const auto event = photon_core_event_of(unterminated(line), sender);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->name, "");  // photon-core's HttpBroker takes "message" (and "channel") events
  EXPECT_EQ(event->id, "");
  EXPECT_EQ(boost::json::parse(event->data),
            boost::json::parse(R"({"channel":"board:1","event":"moved","data":3,"timestamp":99,
                                   "source":"kanban"})"));
  const auto refusal =
      photon_core_event_of(unterminated(protocol::error_line("events-0-0", "no")), sender);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_TRUE(refusal->last);
  EXPECT_FALSE(photon_core_event_of(R"({"type":"result","id":"events-0-0"})", sender));
}

TEST(StreamEvents, GapIsAPhotonGapEvent) {
  const std::string line = boost::json::serialize(boost::json::object{
      {"type", "events_gap"}, {"lastEventId", 12}, {"message", "messages may have been missed"}});
  const auto event = stream_event_of(line);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->name, "photon-gap");
  EXPECT_FALSE(event->last);
}

TEST(StreamEvents, RepliesAreNotEvents) {
  const std::string subscribed = protocol::result_line(
      "events-0-0", true, boost::json::object{{"subscribed", true}, {"channel", "board:*"}});
  EXPECT_FALSE(stream_event_of(unterminated(subscribed)).has_value());
  EXPECT_FALSE(stream_event_of(unterminated(protocol::pong_line("p"))).has_value());
}

}  // namespace
}  // namespace photon::ui
