// Request parsing: generic checks in RequestParser::parse, per-field rules in validate_fields.
#include "protocol/request.hpp"

#include "common/memory_release.hpp"
#include "protocol/error_messages.hpp"

#include <array>
#include <cmath>
#include <cstdint>

namespace photon::protocol {
namespace {

// C0 controls and DEL, C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F), and the Unicode line and
// paragraph separators (U+2028, U+2029: E2 80 A8, E2 80 A9), which JavaScript and many terminals
// and log readers treat as line breaks. The text is UTF-8 (Boost.JSON validated it), so matching
// these byte sequences finds exactly those characters.
bool has_control_character(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return true;
    const auto next = [&](std::size_t at) {
      return at < text.size() ? static_cast<unsigned char>(text[at]) : 0;
    };
    if (c == 0xc2 && next(i + 1) >= 0x80 && next(i + 1) <= 0x9f) return true;
    if (c == 0xe2 && next(i + 1) == 0x80 && (next(i + 2) == 0xa8 || next(i + 2) == 0xa9))
      return true;
  }
  return false;
}

std::optional<std::string> channel_error(const boost::json::value* value, bool allow_wildcard) {
  if (value == nullptr || !value->is_string() || value->get_string().empty()) {
    return std::string(messages::kChannelNotString);
  }
  std::string_view channel = value->get_string();
  if (channel.size() > kMaxChannelBytes) return std::string(messages::kChannelTooLong);
  if (has_control_character(channel)) return std::string(messages::kChannelControl);
  auto star = channel.find('*');
  if (star != std::string_view::npos) {
    if (!allow_wildcard) return std::string(messages::kChannelWildcardInPublish);
    if (star != channel.size() - 1) return std::string(messages::kChannelWildcardNotLast);
  }
  return std::nullopt;
}

std::optional<std::string> name_error(const boost::json::value* value) {
  if (value == nullptr || !value->is_string() || value->get_string().empty()) {
    return std::string(messages::kLockNameNotString);
  }
  std::string_view name = value->get_string();
  if (name.size() > kMaxLockNameBytes) return std::string(messages::kLockNameTooLong);
  if (has_control_character(name)) return std::string(messages::kLockNameControl);
  return std::nullopt;
}

std::optional<std::string> integer_error(const boost::json::value* value, std::string_view key,
                                         std::int64_t min, std::int64_t max) {
  std::optional<std::int64_t> number = value ? integer_value(*value) : std::nullopt;
  if (number && *number >= min && *number <= max) return std::nullopt;
  return "\"" + std::string(key) + "\" must be an integer from " + std::to_string(min) + " to " +
         std::to_string(max) + " (milliseconds)";
}

std::optional<std::string> field_error(const Request& request, Field field, bool required) {
  const boost::json::value* value = nullptr;
  switch (field) {
    case Field::kChannel:
    case Field::kChannelPattern:
      value = request.find("channel");
      if (value == nullptr && !required) return std::nullopt;
      return channel_error(value, field == Field::kChannelPattern);
    case Field::kMessage:
      if (request.find("message") == nullptr && required) {
        return std::string(messages::kMessageMissing);
      }
      return std::nullopt;
    case Field::kLockName:
      value = request.find("lockName");
      if (value == nullptr && !required) return std::nullopt;
      return name_error(value);
    case Field::kLockTimeout:
      value = request.find("lockTimeout");
      if (value == nullptr && !required) return std::nullopt;
      return integer_error(value, "lockTimeout", 1, kMaxLockTimeoutMs);
    case Field::kLockWait:
      value = request.find("lockWait");
      if (value == nullptr && !required) return std::nullopt;
      return integer_error(value, "lockWait", 0, kMaxLockWaitMs);
    case Field::kReleaseOnDisconnect:
      value = request.find("releaseOnDisconnect");
      if ((value == nullptr && !required) || (value != nullptr && value->is_bool())) {
        return std::nullopt;
      }
      return std::string(messages::kReleaseOnDisconnectNotBool);
    case Field::kRenewToken: {
      value = request.find("renewToken");
      if (value == nullptr && !required) return std::nullopt;
      const std::optional<std::int64_t> token = value ? integer_value(*value) : std::nullopt;
      if (!token || *token < 1 || *token > kMaxRenewToken) {
        return std::string(messages::kRenewTokenInvalid);
      }
      if (request.integer_field("lockWait", 0) > 0)
        return std::string(messages::kRenewTokenWithWait);
      return std::nullopt;
    }
    case Field::kMethod:
      value = request.find("method");
      if (value == nullptr && !required) return std::nullopt;
      if (value == nullptr || !value->is_string() || value->get_string().empty()) {
        return std::string(messages::kMethodNotString);
      }
      if (value->get_string().size() > kMaxMethodBytes)
        return std::string(messages::kMethodTooLong);
      if (has_control_character(value->get_string())) return std::string(messages::kMethodControl);
      return std::nullopt;
    case Field::kArgs:
      value = request.find("args");
      if ((value == nullptr && !required) || (value != nullptr && value->is_object())) {
        return std::nullopt;
      }
      return std::string(messages::kArgsNotObject);
    case Field::kClientType:
      value = request.find("clientType");
      if (value == nullptr && !required) return std::nullopt;
      if (value != nullptr && value->is_string() &&
          value->get_string().size() <= kMaxClientTypeBytes) {
        return std::nullopt;
      }
      return std::string(messages::kClientTypeInvalid);
    case Field::kLastEventId:
      value = request.find("lastEventId");
      if (value == nullptr && !required) return std::nullopt;
      if (value != nullptr && value->is_string() &&
          value->get_string().size() <= kMaxLastEventIdBytes) {
        return std::nullopt;
      }
      return std::string(messages::kLastEventIdInvalid);
    case Field::kJobId:
      value = request.find("jobId");
      if (value == nullptr && !required) return std::nullopt;
      if (value == nullptr || !value->is_string() || value->get_string().empty()) {
        return std::string(messages::kJobIdNotString);
      }
      if (value->get_string().size() > kMaxJobIdBytes) return std::string(messages::kJobIdTooLong);
      if (has_control_character(value->get_string())) return std::string(messages::kJobIdControl);
      return std::nullopt;
    case Field::kCron:
      value = request.find("cron");
      if (value == nullptr && !required) return std::nullopt;
      if (value != nullptr && value->is_string() && !value->get_string().empty() &&
          value->get_string().size() <= kMaxCronBytes) {
        return std::nullopt;
      }
      return std::string(messages::kCronNotString);
    case Field::kTimezone:
      value = request.find("timezone");
      if (value == nullptr && !required) return std::nullopt;
      if (value != nullptr && value->is_string() &&
          value->get_string().size() <= kMaxTimezoneBytes) {
        return std::nullopt;
      }
      return std::string(messages::kTimezoneNotString);
    case Field::kCatchUp:
      value = request.find("catchUp");
      if (value == nullptr && !required) return std::nullopt;
      if (value != nullptr && value->is_string() &&
          (value->get_string() == "latest" || value->get_string() == "skip")) {
        return std::nullopt;
      }
      return std::string(messages::kCatchUpInvalid);
    case Field::kOverlap:
      value = request.find("overlap");
      if (value == nullptr && !required) return std::nullopt;
      if (value != nullptr && value->is_string() &&
          (value->get_string() == "skip" || value->get_string() == "allow")) {
        return std::nullopt;
      }
      return std::string(messages::kOverlapInvalid);
    case Field::kLimit: {
      value = request.find("limit");
      if (value == nullptr && !required) return std::nullopt;
      std::optional<std::int64_t> number = value ? integer_value(*value) : std::nullopt;
      if (number && *number >= 1 && *number <= 1000) return std::nullopt;
      return std::string(messages::kLimitInvalid);
    }
    case Field::kPromptValue:
      if (request.find("promptValue") == nullptr && required) {
        return std::string(messages::kPromptValueMissing);
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> channel_name_error(std::string_view channel, bool allow_wildcard) {
  const boost::json::value value(boost::json::string_view(channel.data(), channel.size()));
  return channel_error(&value, allow_wildcard);
}

std::string unknown_type_message(std::string_view type) {
  return "unknown request type \"" + std::string(type.substr(0, 64)) + "\"";
}

std::string_view Request::string_field(std::string_view key) const {
  const boost::json::value* value = find(key);
  if (value == nullptr || !value->is_string()) return {};
  return value->get_string();
}

std::optional<std::int64_t> integer_value(const boost::json::value& value) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64()) {
    if (value.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(value.get_uint64());
  }
  if (value.is_double()) {
    const double number = value.get_double();
    // Bounds keep the conversion defined; integral-valued doubles (3e4) are integers to JSON.
    if (number >= -9.0e18 && number <= 9.0e18 && std::trunc(number) == number) {
      return static_cast<std::int64_t>(number);
    }
  }
  return std::nullopt;
}

std::int64_t Request::integer_field(std::string_view key, std::int64_t fallback) const {
  const boost::json::value* value = find(key);
  if (value == nullptr) return fallback;
  return integer_value(*value).value_or(fallback);
}

bool Request::bool_field(std::string_view key, bool fallback) const {
  const boost::json::value* value = find(key);
  return value != nullptr && value->is_bool() ? value->get_bool() : fallback;
}

std::optional<std::string> validate_fields(const Request& request, std::span<const Field> required,
                                           std::span<const Field> optional) {
  for (Field field : required) {
    if (auto error = field_error(request, field, true)) return error;
  }
  for (Field field : optional) {
    if (auto error = field_error(request, field, false)) return error;
  }
  return std::nullopt;
}

void* RequestParser::CountingResource::do_allocate(std::size_t size, std::size_t align) {
  void* pointer = ::operator new(size, std::align_val_t(align));
  ++blocks_in_use_;
  bytes_borrowed_ += size;
  return pointer;
}

void RequestParser::CountingResource::do_deallocate(void* pointer, std::size_t /*size*/,
                                                    std::size_t align) {
  ::operator delete(pointer, std::align_val_t(align));
  --blocks_in_use_;
}

RequestParser::RequestParser(std::size_t max_json_depth) : max_json_depth_(max_json_depth) {
  make_parser();
}

void RequestParser::make_parser() {
  boost::json::parse_options options;
  options.max_depth = max_json_depth_;
  parser_.reset();
  parser_.emplace(boost::json::storage_ptr(&upstream_), options, parser_stack_buffer_.data(),
                  parser_stack_buffer_.size());
  parser_may_hold_heap_ = false;
}

ParseResult RequestParser::parse(std::string_view line) {
  // Drop the previous request's JSON before the arena it lives in.
  root_ = nullptr;
  arena_.reset();
  // A long line may have grown the parser's value stack on the heap, and reset() keeps its
  // capacity: a parser that met one large request would hold that memory for good.
  if (parser_may_hold_heap_) make_parser();
  // Large requests' memory is free again: once it adds up to a megabyte, the heap's free pages
  // are given back to the system (common/memory_release.hpp), as after a large output queue.
  if (upstream_bytes_pending_ += upstream_.take_bytes_borrowed();
      upstream_bytes_pending_ >= kReleaseAfterBytes) {
    note_memory_freed(std::exchange(upstream_bytes_pending_, 0));
  }
  arena_.emplace(arena_buffer_.data(), arena_buffer_.size(), boost::json::storage_ptr(&upstream_));
  parser_may_hold_heap_ = line.size() > kLineBytesWithinParserStack;
  parser_->reset(boost::json::storage_ptr(&*arena_));

  boost::system::error_code ec;
  parser_->write(line.data(), line.size(), ec);
  if (ec) {
    std::string message = "invalid JSON: " + ec.message();
    if (ec == boost::json::error::too_deep) message = "invalid JSON: nesting is too deep";
    return RequestError{std::string(messages::kUnknownId), std::move(message)};
  }
  root_ = parser_->release();

  if (!root_.is_object()) {
    return RequestError{std::string(messages::kUnknownId), std::string(messages::kNotAnObject)};
  }
  const boost::json::object& object = root_.get_object();

  const boost::json::value* id = object.if_contains("id");
  std::string echo_id(messages::kUnknownId);
  if (id != nullptr && id->is_string() && id->get_string().size() <= kMaxIdBytes) {
    echo_id = std::string(id->get_string());
  }

  const boost::json::value* type = object.if_contains("type");
  if (type == nullptr || !type->is_string()) {
    return RequestError{std::move(echo_id), std::string(messages::kTypeMissing)};
  }
  if (id == nullptr || !id->is_string()) {
    return RequestError{std::move(echo_id), std::string(messages::kIdMissing)};
  }
  if (id->get_string().size() > kMaxIdBytes) {
    return RequestError{std::string(messages::kUnknownId), std::string(messages::kIdTooLong)};
  }
  if (const boost::json::value* session = object.if_contains("sessionId")) {
    if (!session->is_string()) {
      return RequestError{std::move(echo_id), std::string(messages::kSessionIdNotString)};
    }
    if (session->get_string().size() > kMaxIdBytes) {
      return RequestError{std::move(echo_id), std::string(messages::kSessionIdTooLong)};
    }
  }
  return Request{type->get_string(), id->get_string(), &object};
}

}  // namespace photon::protocol
