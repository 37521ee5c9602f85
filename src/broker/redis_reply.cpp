// hiredis replies read without surprises: a reply of another type reads as empty.
#include "broker/redis_reply.hpp"

#include <charconv>

namespace photon::broker {

std::string_view text_of(const redisReply* reply) {
  return reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
                 reply->type == REDIS_REPLY_ERROR
             ? std::string_view(reply->str, reply->len)
             : std::string_view();
}

std::int64_t integer_of(const redisReply* reply) {
  return reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
}

std::optional<std::int64_t> integer_in(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_STRING) return std::nullopt;
  std::int64_t value = 0;
  const std::string_view text = text_of(reply);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::string> failure(const redisReply* reply, const std::string& error) {
  if (reply == nullptr) return error;
  if (reply->type == REDIS_REPLY_ERROR) return "redis: " + std::string(text_of(reply));
  return std::nullopt;
}

}  // namespace photon::broker
