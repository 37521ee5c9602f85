// The photon-core form of a channel message, built member by member without copying the message.
#include "channels/photon_core_form.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace photon::core {
namespace json = boost::json;

std::string photon_core_text(std::string_view channel, const json::value& message,
                             const PhotonCoreSender& sender) {
  const json::object* object = message.if_object();
  const auto member = [object](std::string_view key) -> const json::value* {
    return object == nullptr ? nullptr : object->if_contains(key);
  };
  const json::value* event = member("event");
  const json::value* data = member("data");
  const json::value* timestamp = member("timestamp");
  const json::value* source = member("source");

  std::string text = "{\"channel\":";
  text += json::serialize(json::string_view(channel.data(), channel.size()));
  text += ",\"event\":";
  text += event != nullptr && event->is_string() ? json::serialize(*event) : "\"message\"";
  text += ",\"data\":";
  text += json::serialize(data != nullptr ? *data : message);
  text += ",\"timestamp\":";
  text += timestamp != nullptr && timestamp->is_number() ? json::serialize(*timestamp)
                                                         : std::to_string(sender.now_millis);
  text += ",\"source\":";
  text += source != nullptr && source->is_string()
              ? json::serialize(*source)
              : json::serialize(json::string_view(sender.source.data(), sender.source.size()));
  if (!sender.mark.empty()) {
    text += ",\"photond\":";
    text += json::serialize(json::string_view(sender.mark.data(), sender.mark.size()));
  }
  text += '}';
  return text;
}

json::value photond_message_of(std::string_view channel, json::value payload) {
  if (payload.is_object()) return payload;
  return json::object{{"channel", json::string_view(channel.data(), channel.size())},
                      {"event", "message"},
                      {"data", std::move(payload)}};
}

bool has_mark_prefix(const json::value& payload, std::string_view mark_prefix) {
  const json::object* object = payload.if_object();
  if (object == nullptr) return false;
  const json::value* mark = object->if_contains("photond");
  return mark != nullptr && mark->is_string() &&
         std::string_view(mark->get_string()).starts_with(mark_prefix);
}

}  // namespace photon::core
