// Event-stream lines picked out by how protocol/reply.cpp writes them: the type is the first
// member, and a channel message's id the second.
#include "ui/stream_events.hpp"

#include "protocol/error_messages.hpp"
#include "protocol/reply.hpp"

namespace photon::ui {
namespace {

constexpr std::string_view kChannelMessagePrefix = R"({"type":"channel_message","id":"ch_)";
constexpr std::string_view kErrorPrefix = R"({"type":"error",)";
constexpr std::string_view kGapPrefix = R"({"type":"events_gap",)";

}  // namespace

std::optional<net::StreamEvent> stream_event_of(std::string_view line) {
  if (line.starts_with(kChannelMessagePrefix)) {
    const std::string_view digits = line.substr(kChannelMessagePrefix.size());
    return net::StreamEvent{.id = digits.substr(0, digits.find('"'))};
  }
  if (line.starts_with(kGapPrefix)) return net::StreamEvent{.name = "photon-gap"};
  if (line.starts_with(kErrorPrefix)) return net::StreamEvent{.name = "photon-error", .last = true};
  return std::nullopt;
}

net::WebStreamProtocol web_stream_protocol() { return {.event_of = stream_event_of}; }

}  // namespace photon::ui
