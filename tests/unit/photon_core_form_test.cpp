// photon-core's message form and back: the mapping rule docs/scaling.md states, case by case.
#include "channels/photon_core_form.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace photon::core {
namespace {
namespace json = boost::json;

const PhotonCoreSender kSender{.source = "kanban", .now_millis = 1700000000000, .mark = ""};

json::value form(std::string_view channel, std::string_view message,
                 const PhotonCoreSender& sender = kSender) {
  return json::parse(photon_core_text(channel, json::parse(message), sender));
}

TEST(PhotonCoreForm, AnEmitKeepsItsEventAndDataAndGetsTimeAndSource) {
  EXPECT_EQ(form("board:1", R"({"event":"task-moved","data":{"taskId":3}})"),
            json::parse(R"({"channel":"board:1","event":"task-moved","data":{"taskId":3},
                            "timestamp":1700000000000,"source":"kanban"})"));
}

TEST(PhotonCoreForm, AMessageWithoutEventOrDataIsAllData) {
  EXPECT_EQ(form("c", R"({"taskId":3})"),
            json::parse(R"({"channel":"c","event":"message","data":{"taskId":3},
                            "timestamp":1700000000000,"source":"kanban"})"));
  EXPECT_EQ(form("c", R"({"event":7})").at("event"), "message");  // not a string: not an event
}

TEST(PhotonCoreForm, NonObjectsAreTheDataOfAMessageEvent) {
  for (std::string_view value : {"42", "\"text\"", "[1,2]", "null", "true"}) {
    const json::value result = form("c", value);
    EXPECT_EQ(result.at("event"), "message") << value;
    EXPECT_EQ(result.at("data"), json::parse(value)) << value;
  }
}

TEST(PhotonCoreForm, APhotonCoreMessageGoesBackUnchanged) {
  const std::string_view original =
      R"({"channel":"board:1","event":"e","data":null,"timestamp":5,"source":"ts"})";
  EXPECT_EQ(form("board:1", original), json::parse(original));
  // Falsy data is data (photon-core's DaemonBroker would take the whole message for it).
  EXPECT_EQ(form("board:1", R"({"event":"e","data":0})").at("data"), 0);
}

TEST(PhotonCoreForm, TheChannelIsTheOneItIsPublishedOn) {
  EXPECT_EQ(form("real", R"({"channel":"claimed","event":"e"})").at("channel"), "real");
  EXPECT_EQ(form("quote\"d", "1").at("channel"), "quote\"d");
}

TEST(PhotonCoreForm, TheMarkIsAddedOnlyWhenGiven) {
  const PhotonCoreSender marked{.source = "kanban", .now_millis = 1, .mark = "kanban/abc"};
  const json::value with = form("c", "1", marked);
  EXPECT_EQ(with.at("photond"), "kanban/abc");
  EXPECT_TRUE(has_mark_prefix(with, "kanban/"));
  EXPECT_FALSE(has_mark_prefix(with, "kanban@1/"));
  EXPECT_FALSE(has_mark_prefix(with, "other/"));
  EXPECT_FALSE(form("c", "1").as_object().contains("photond"));
  EXPECT_FALSE(has_mark_prefix(json::parse(R"({"photond":5})"), ""));
  EXPECT_FALSE(has_mark_prefix(json::parse("[1]"), ""));
}

TEST(PhotonCoreForm, ArrivingObjectsAreDeliveredAsTheyAreOthersWrapped) {
  const json::value object = json::parse(R"({"channel":"c","event":"e","extra":[1]})");
  EXPECT_EQ(photond_message_of("c", object), object);
  EXPECT_EQ(photond_message_of("c", json::parse("42")),
            json::parse(R"({"channel":"c","event":"message","data":42})"));
  EXPECT_EQ(photond_message_of("c", nullptr),
            json::parse(R"({"channel":"c","event":"message","data":null})"));
}

}  // namespace
}  // namespace photon::core
