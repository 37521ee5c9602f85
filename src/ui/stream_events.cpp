// Event-stream lines picked out by how protocol/reply.cpp writes them: the type is the first
// member, and a channel message's id the second.
#include "ui/stream_events.hpp"

#include "common/defaults.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

namespace photon::ui {
namespace {

constexpr std::string_view kChannelMessagePrefix = R"({"type":"channel_message","id":"ch_)";
constexpr std::string_view kErrorPrefix = R"({"type":"error",)";
constexpr std::string_view kGapPrefix = R"({"type":"events_gap",)";
constexpr std::string_view kEventIdMember = R"(","eventId":")";

}  // namespace

std::string_view channel_message_number(std::string_view line) {
  if (!line.starts_with(kChannelMessagePrefix)) return {};
  const std::string_view digits = line.substr(kChannelMessagePrefix.size());
  return digits.substr(0, digits.find('"'));
}

std::string_view channel_message_event_id(std::string_view line) {
  if (!line.starts_with(kChannelMessagePrefix)) return {};
  // After the channel, whose text cannot hold this sequence (a quote in it is escaped), and
  // before the message, which could.
  const std::size_t start = line.find(kEventIdMember);
  if (start == std::string_view::npos) return {};
  const std::string_view rest = line.substr(start + kEventIdMember.size());
  return rest.substr(0, rest.find('"'));
}

std::optional<net::StreamEvent> stream_event_of(std::string_view line) {
  if (line.starts_with(kChannelMessagePrefix)) {
    return net::StreamEvent{.id = channel_message_event_id(line)};
  }
  if (line.starts_with(kGapPrefix)) return net::StreamEvent{.name = "photon-gap"};
  if (line.starts_with(kErrorPrefix)) return net::StreamEvent{.name = "photon-error", .last = true};
  return std::nullopt;
}

std::optional<net::StreamEvent> photon_core_event_of(std::string_view line,
                                                     const core::PhotonCoreSender& sender) {
  if (line.starts_with(kErrorPrefix)) return net::StreamEvent{.name = "photon-error", .last = true};
  if (!line.starts_with(kChannelMessagePrefix)) return std::nullopt;
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = defaults::kMaxJsonDepthLimit + 1;  // a line around the deepest message
  const boost::json::value parsed = boost::json::parse(line, ec, {}, options);
  const boost::json::object* object = ec ? nullptr : parsed.if_object();
  const boost::json::value* channel = object ? object->if_contains("channel") : nullptr;
  const boost::json::value* message = object ? object->if_contains("message") : nullptr;
  if (channel == nullptr || !channel->is_string() || message == nullptr) return std::nullopt;
  return net::StreamEvent{
      .data = core::photon_core_text(std::string_view(channel->get_string()), *message, sender)};
}

net::WebStreamProtocol web_stream_protocol() { return {.event_of = stream_event_of}; }

}  // namespace photon::ui
