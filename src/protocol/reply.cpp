// Reply serialization. The hot-path lines (publish reply, channel_message) are assembled from
// pieces to avoid building a JSON tree per message; strings still go through Boost.JSON's escaper.
#include "protocol/reply.hpp"

namespace photon::protocol {
namespace {

void append_json_string(std::string& out, std::string_view text) {
  out += boost::json::serialize(boost::json::string_view(text.data(), text.size()));
}

}  // namespace

std::string result_line(std::string_view id, bool success, const boost::json::value& data) {
  std::string out = R"({"type":"result","id":)";
  append_json_string(out, id);
  out += success ? R"(,"success":true,"data":)" : R"(,"success":false,"data":)";
  out += boost::json::serialize(data);
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

std::string pong_line(std::string_view id) {
  std::string out = R"({"type":"pong","id":)";
  append_json_string(out, id);
  out += "}\n";
  return out;
}

std::string channel_message_line(std::uint64_t sequence, std::string_view channel,
                                 const boost::json::value& message) {
  std::string out = R"({"type":"channel_message","id":"ch_)";
  out += std::to_string(sequence);
  out += R"(","channel":)";
  append_json_string(out, channel);
  out += R"(,"message":)";
  out += boost::json::serialize(message);
  out += "}\n";
  return out;
}

std::string published_line(std::string_view id, std::string_view channel, std::size_t delivered) {
  std::string out = R"({"type":"result","id":)";
  append_json_string(out, id);
  out += R"(,"success":true,"data":{"published":true,"channel":)";
  append_json_string(out, channel);
  out += R"(,"delivered":)";
  out += std::to_string(delivered);
  out += "}}\n";
  return out;
}

}  // namespace photon::protocol
