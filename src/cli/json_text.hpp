// JSON as photonctl reads it from a command line and shows it to a person.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace photon::cli {

// `text` as JSON when it is valid JSON (a number, true, false, null, an object, an array, a quoted
// string), else `text` itself as a string: `1` is the number 1, `Done` the string "Done".
boost::json::value loose_json(std::string_view text);

// `value` indented by two spaces per level, one member or element per line (no final newline).
std::string pretty_json(const boost::json::value& value);

// The string member `key` of `object`; empty when it is missing or not a string.
std::string string_member(const boost::json::object& object, std::string_view key);

}  // namespace photon::cli
