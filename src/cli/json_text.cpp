// Loose parsing of command-line values, an indented printer (Boost.JSON only prints compact), and
// reading a string member of a daemon reply.
#include "cli/json_text.hpp"

#include <boost/json.hpp>

namespace photon::cli {
namespace {

void pretty(const boost::json::value& value, std::string& out, std::size_t depth) {
  const auto indent = [&](std::size_t level) { out.append(2 * level, ' '); };
  if (value.is_object() && !value.get_object().empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& member : value.get_object()) {
      if (!first) out += ",\n";
      first = false;
      indent(depth + 1);
      out += boost::json::serialize(boost::json::value(member.key())) + ": ";
      pretty(member.value(), out, depth + 1);
    }
    out += "\n";
    indent(depth);
    out += "}";
  } else if (value.is_array() && !value.get_array().empty()) {
    out += "[\n";
    bool first = true;
    for (const auto& element : value.get_array()) {
      if (!first) out += ",\n";
      first = false;
      indent(depth + 1);
      pretty(element, out, depth + 1);
    }
    out += "\n";
    indent(depth);
    out += "]";
  } else {
    out += boost::json::serialize(value);
  }
}

}  // namespace

boost::json::value loose_json(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) return boost::json::string(text);
  return value;
}

std::string pretty_json(const boost::json::value& value) {
  std::string out;
  pretty(value, out, 0);
  return out;
}

std::string string_member(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

}  // namespace photon::cli
