// The sentences clients read in `error` replies, kept in one place so they stay consistent and
// tests can name them.
#pragma once

#include <string>
#include <string_view>

namespace photon::protocol::messages {

inline constexpr std::string_view kUnknownId = "unknown";
inline constexpr std::string_view kNotAnObject = "request must be a JSON object";
inline constexpr std::string_view kTypeMissing = "request requires \"type\" (a string)";
inline constexpr std::string_view kIdMissing = "request requires \"id\" (a string)";
inline constexpr std::string_view kIdTooLong = "\"id\" is longer than 256 bytes";
inline constexpr std::string_view kChannelNotString = "\"channel\" must be a non-empty string";
inline constexpr std::string_view kChannelTooLong = "\"channel\" is longer than 256 bytes";
inline constexpr std::string_view kChannelControl =
    "\"channel\" contains a control character or a line separator";
inline constexpr std::string_view kChannelWildcardInPublish =
    "\"channel\" of a publish may not contain '*'";
inline constexpr std::string_view kChannelWildcardNotLast =
    "\"channel\" may contain '*' only as its last character";
inline constexpr std::string_view kMessageMissing = "publish requires \"message\"";
inline constexpr std::string_view kLockNameNotString = "\"lockName\" must be a non-empty string";
inline constexpr std::string_view kLockNameTooLong = "\"lockName\" is longer than 256 bytes";
inline constexpr std::string_view kLockNameControl =
    "\"lockName\" contains a control character or a line separator";
inline constexpr std::string_view kReleaseOnDisconnectNotBool =
    "\"releaseOnDisconnect\" must be true or false";
inline constexpr std::string_view kMethodNotString = "\"method\" must be a non-empty string";
inline constexpr std::string_view kMethodTooLong = "\"method\" is longer than 256 bytes";
inline constexpr std::string_view kMethodControl =
    "\"method\" contains a control character or a line separator";
inline constexpr std::string_view kArgsNotObject = "\"args\" must be a JSON object";
inline constexpr std::string_view kClientTypeInvalid =
    "\"clientType\" must be a string of at most 64 bytes";
inline constexpr std::string_view kPromptValueMissing =
    "prompt_response requires \"promptValue\" (null declines)";
inline constexpr std::string_view kJobIdNotString = "\"jobId\" must be a non-empty string";
inline constexpr std::string_view kJobIdTooLong = "\"jobId\" is longer than 256 bytes";
inline constexpr std::string_view kJobIdControl =
    "\"jobId\" contains a control character or a line separator";
inline constexpr std::string_view kCronNotString =
    "\"cron\" must be a non-empty string of at most 256 bytes";
inline constexpr std::string_view kTimezoneNotString =
    "\"timezone\" must be a string of at most 64 bytes (an IANA name such as Europe/Paris)";
inline constexpr std::string_view kCatchUpInvalid = "\"catchUp\" must be \"latest\" or \"skip\"";
inline constexpr std::string_view kOverlapInvalid = "\"overlap\" must be \"skip\" or \"allow\"";
inline constexpr std::string_view kLimitInvalid = "\"limit\" must be an integer from 1 to 1000";
inline constexpr std::string_view kSessionIdNotString = "\"sessionId\" must be a string";
inline constexpr std::string_view kSessionIdTooLong = "\"sessionId\" is longer than 256 bytes";
inline constexpr std::string_view kTooManySubscriptions =
    "too many subscriptions on this connection (limit %)";
inline constexpr std::string_view kTooManySubscriptionsInDaemon =
    "too many subscriptions in the daemon (limit %)";
inline constexpr std::string_view kLineTooLong = "line exceeds % bytes; closing the connection";
inline constexpr std::string_view kInternalError =
    "internal error while serving this request (the daemon's log says more); the connection "
    "stays open";
inline constexpr std::string_view kPermissionDenied =
    "permission denied: uid % is not the daemon's owner";
inline constexpr std::string_view kTooManyConnections =
    "too many connections (limit %); try again later";
inline constexpr std::string_view kNoPeerCredentials = "cannot read peer credentials";
inline constexpr std::string_view kBinaryMessage =
    "binary messages are not accepted: send each request as one text message";
inline constexpr std::string_view kShuttingDown = "Shutting down";
inline constexpr std::string_view kFencingTokenNotIssued = "cannot issue a fencing token: %";
inline constexpr std::string_view kFencingTokensExhausted =
    "the next token would exceed 9007199254740991 (2^53 - 1, the largest integer a JavaScript "
    "number holds exactly)";

}  // namespace photon::protocol::messages

namespace photon::protocol {

// Fills the single '%' of a message template with `value`.
inline std::string fill_message(std::string_view message_template, std::string_view value) {
  std::string out(message_template);
  if (auto at = out.find('%'); at != std::string::npos) out.replace(at, 1, value);
  return out;
}

}  // namespace photon::protocol
