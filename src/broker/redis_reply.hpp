// Reading hiredis replies as the broker's commands and scripts return them.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace photon::broker {

// The text of a string, status or error reply; empty for any other.
std::string_view text_of(const redisReply* reply);

// The value of an integer reply; 0 for any other.
std::int64_t integer_of(const redisReply* reply);

// A string reply that is a decimal integer (as HGET returns numbers); nothing otherwise.
std::optional<std::int64_t> integer_in(const redisReply* reply);

// Why `reply` is not what a script returns: the transport's `error` (no reply), or Redis's.
// Nothing when it is a reply to read.
std::optional<std::string> failure(const redisReply* reply, const std::string& error);

}  // namespace photon::broker
