// Serialization of every reply and push line the daemon sends. Each function returns one complete
// line, newline included, ready to be written in a single write.
#pragma once

#include "common/refusal.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace photon::protocol {

// {"type":"result","id":ID,"success":SUCCESS,"data":DATA}
std::string result_line(std::string_view id, bool success, const boost::json::value& data);

// {"type":"error","id":ID,"error":MESSAGE}
std::string error_line(std::string_view id, std::string_view message);

// {"type":"error","id":ID,"error":SENTENCE}: a refusal, in its sentence from the catalogue.
std::string error_line(std::string_view id, const Refused& refused);

// {"type":"emit","id":ID,"emitData":DATA}: a running command's progress, to its caller.
std::string emit_line(std::string_view id, const boost::json::object& data);

// {"type":"prompt","id":ID,"prompt":PROMPT}: a running command asks its caller.
std::string prompt_line(std::string_view id, const boost::json::object& prompt);

// {"type":"pong","id":ID}
std::string pong_line(std::string_view id);

// {"type":"channel_message","id":"ch_SEQUENCE","channel":CHANNEL,"eventId":EVENT_ID,"message":MESSAGE}
// (the event stream reads the id as the line's second member: ui/stream_events.cpp).
std::string channel_message_line(std::uint64_t sequence, std::string_view channel,
                                 std::string_view event_id, const boost::json::value& message);

// {"type":"refresh_needed","id":ID,"channel":CHANNEL}: a subscriber that came back with a
// lastEventId cannot be shown everything it missed on CHANNEL.
std::string refresh_needed_line(std::string_view id, std::string_view channel);

// The same line marked as a replay: `line` with ,"replay":true before its closing brace.
std::string replayed_line(std::string_view line);

// {"type":"result","id":ID,"success":true,"data":{"published":true,"channel":C,"delivered":N,
// "eventId":EVENT_ID}}. Written by hand because it is on the publish hot path.
std::string published_line(std::string_view id, std::string_view channel, std::size_t delivered,
                           std::string_view event_id);

}  // namespace photon::protocol
