// Reply serialization. The hot-path lines (publish reply, channel_message) are assembled from
// pieces to avoid building a JSON tree per message; strings still go through Boost.JSON's escaper.
#include "protocol/reply.hpp"

#include "protocol/error_messages.hpp"

#include <array>

namespace photon::protocol {
namespace {

// Appends `text` as a JSON string. `text` is valid UTF-8 (it came out of a parsed request or is
// ours), so only quotes, backslashes and control characters need escaping; the common case of
// none is a plain copy.
constexpr auto kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}();

void append_json_string(std::string& out, std::string_view text) {
  bool plain = true;
  for (char c : text) plain &= !kNeedsEscape[static_cast<unsigned char>(c)];
  if (!plain) {
    out += boost::json::serialize(boost::json::string_view(text.data(), text.size()));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

// Serializes `value` into `out` through a stack buffer, without a temporary string. (Resizing
// `out` by a whole chunk and back would zero 4 KiB per line and leave every line, however short,
// holding a 4 KiB allocation while it waits in subscribers' queues.)
void append_json_value(std::string& out, const boost::json::value& value) {
  if (value.is_string()) return append_json_string(out, value.get_string());
  boost::json::serializer serializer;
  serializer.reset(&value);
  char chunk[4096];
  while (!serializer.done()) {
    const boost::json::string_view written = serializer.read(chunk, sizeof chunk);
    out.append(written.data(), written.size());
  }
}

}  // namespace

std::string result_line(std::string_view id, bool success, const boost::json::value& data) {
  std::string out = R"({"type":"result","id":)";
  append_json_string(out, id);
  out += success ? R"(,"success":true,"data":)" : R"(,"success":false,"data":)";
  append_json_value(out, data);
  out += "}\n";
  return out;
}

std::string error_line(std::string_view id, std::string_view message) {
  std::string out = R"({"type":"error","id":)";
  append_json_string(out, id);
  out += R"(,"error":)";
  append_json_string(out, message);
  out += "}\n";
  return out;
}

std::string error_line(std::string_view id, const Refused& refused) {
  return error_line(id, describe(refused));
}

std::string emit_line(std::string_view id, const boost::json::object& data) {
  std::string out = R"({"type":"emit","id":)";
  append_json_string(out, id);
  out += R"(,"emitData":)";
  append_json_value(out, data);
  out += "}\n";
  return out;
}

std::string prompt_line(std::string_view id, const boost::json::object& prompt) {
  std::string out = R"({"type":"prompt","id":)";
  append_json_string(out, id);
  out += R"(,"prompt":)";
  append_json_value(out, prompt);
  out += "}\n";
  return out;
}

std::string pong_line(std::string_view id) {
  std::string out = R"({"type":"pong","id":)";
  append_json_string(out, id);
  out += "}\n";
  return out;
}

std::string channel_message_line(std::uint64_t sequence, std::string_view channel,
                                 std::string_view event_id, const boost::json::value& message) {
  std::string out = R"({"type":"channel_message","id":"ch_)";
  out += std::to_string(sequence);
  out += R"(","channel":)";
  append_json_string(out, channel);
  out += R"(,"eventId":)";
  append_json_string(out, event_id);
  out += R"(,"message":)";
  append_json_value(out, message);
  out += "}\n";
  return out;
}

std::string refresh_needed_line(std::string_view id, std::string_view channel) {
  std::string out = R"({"type":"refresh_needed","id":)";
  append_json_string(out, id);
  out += R"(,"channel":)";
  append_json_string(out, channel);
  out += "}\n";
  return out;
}

std::string replayed_line(std::string_view line) {
  // A channel message line ends in "}\n" (channel_message_line).
  std::string out(line.substr(0, line.size() - 2));
  out += R"(,"replay":true})";
  out += '\n';
  return out;
}

std::string published_line(std::string_view id, std::string_view channel, std::size_t delivered,
                           std::string_view event_id) {
  std::string out = R"({"type":"result","id":)";
  append_json_string(out, id);
  out += R"(,"success":true,"data":{"published":true,"channel":)";
  append_json_string(out, channel);
  out += R"(,"delivered":)";
  out += std::to_string(delivered);
  out += R"(,"eventId":)";
  append_json_string(out, event_id);
  out += "}}\n";
  return out;
}

}  // namespace photon::protocol
