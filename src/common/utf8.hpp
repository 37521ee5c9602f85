// Text from outside (child processes, HTTP requests) goes into JSON strings, which must be UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace photon {

// `in` with every invalid UTF-8 sequence (overlong forms, surrogates, a character cut in half)
// replaced by U+FFFD.
std::string valid_utf8(std::string_view in);

}  // namespace photon
