// The catalogue: every sentence a client reads (in `error` replies, refusals and HTTP error
// bodies), each written once here so copies cannot drift and tests can name them. Services return
// refusal codes (common/refusal.hpp); describe() turns one into its sentence. '%' marks a value,
// filled in order.
#pragma once

#include "common/refusal.hpp"

#include <array>
#include <initializer_list>
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
inline constexpr std::string_view kRenewTokenInvalid =
    "\"renewToken\" must be an integer from 1 to 9007199254740991 (a fencing token)";
inline constexpr std::string_view kRenewTokenWithWait =
    "\"renewToken\" cannot be combined with a \"lockWait\" above 0: a renewal never waits";
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
inline constexpr std::string_view kLastEventIdInvalid =
    "\"lastEventId\" must be a string of at most 256 bytes";
inline constexpr std::string_view kSessionIdNotString = "\"sessionId\" must be a string";
inline constexpr std::string_view kSessionIdTooLong = "\"sessionId\" is longer than 256 bytes";
inline constexpr std::string_view kLineTooLong = "line exceeds % bytes; closing the connection";
inline constexpr std::string_view kInternalError =
    "internal error while serving this request (the daemon's log says more); the connection "
    "stays open";
inline constexpr std::string_view kPermissionDenied =
    "permission denied: uid % is not the daemon's owner";
inline constexpr std::string_view kTooManyConnections =
    "too many connections (limit %); try again later";
inline constexpr std::string_view kNoPeerCredentials = "cannot read peer credentials";
// The `message` of a `shutdown` request's result (the spec's daemon's words), not a refusal.
inline constexpr std::string_view kShutdownAccepted = "Shutting down";
inline constexpr std::string_view kBinaryWebSocketMessage =
    "binary messages are not accepted: send each request as one text message";

// Lock replies' `reason` (result data, not errors).
inline constexpr std::string_view kLockHeldBy = "lock \"%\" is held by %";
inline constexpr std::string_view kLockWaitTimedOut = "timed out after % ms: %";
inline constexpr std::string_view kLockLeaseEnded =
    "the lease of lock \"%\" under token % has ended: the lock was not taken again";

// Jobs, beyond the refusal codes.
inline constexpr std::string_view kNothingToSchedule = "this photon has no methods to schedule";
inline constexpr std::string_view kJobDeclared =
    "job \"%\" is declared by the photon; change it where it is declared";
inline constexpr std::string_view kPreviousRunRunning = "the previous run was still running";
inline constexpr std::string_view kSlotMissed =
    "the daemon was not running (or the clock jumped) at the scheduled time";
inline constexpr std::string_view kDeclaredJobStays =
    "job \"%\" is declared by the photon and cannot be unscheduled";
inline constexpr std::string_view kJobRunning = "job \"%\" is running (overlap: skip)";
inline constexpr std::string_view kJobRunsAtLimit = "% runs of job \"%\" are running (limit %)";

// Methods, beyond the refusal codes: why a call failed.
inline constexpr std::string_view kSessionNotCreated =
    "could not create the photon for session \"%\": %";
inline constexpr std::string_view kNonStandardException =
    "method \"%\" threw a non-standard exception";

// HTTP error bodies ({"error": SENTENCE}) of the daemon's HTTP listeners.
namespace http {
inline constexpr std::string_view kHeaderTooLarge = "request header exceeds % bytes";
inline constexpr std::string_view kBodyTooLarge = "body exceeds % bytes";
inline constexpr std::string_view kHeaderTimeout = "request header not received within % ms";
inline constexpr std::string_view kBodyTimeout = "request body not received within % ms";
inline constexpr std::string_view kMalformed = "malformed HTTP request: %";
inline constexpr std::string_view kHandlerFailed = "internal error while handling the request";
inline constexpr std::string_view kNotAnswered = "internal error: the request was not answered";
inline constexpr std::string_view kInvalidResponse = "internal error: invalid response";
// The dashboard's listener (docs/ui.md).
inline constexpr std::string_view kNoAnswerInTime = "the daemon did not answer in time";
inline constexpr std::string_view kUnreadableReply = "the daemon's reply could not be read";
inline constexpr std::string_view kListenerStarting = "the listener is starting";
inline constexpr std::string_view kOnlyGet = "only GET is served here";
inline constexpr std::string_view kMalformedTarget = "malformed request target";
inline constexpr std::string_view kNoSuchPage = "no such page: %";
inline constexpr std::string_view kTokenRequired =
    "a valid token is required (photonctl ui NAME shows the URL with it)";
// /channels, photon-core's HTTP channel broker (docs/scaling.md).
inline constexpr std::string_view kChannelTokenRequired =
    "the channel token ($PHOTON_CHANNEL_AUTH_TOKEN) is required: Authorization: Bearer TOKEN";
inline constexpr std::string_view kBadChannelMessage =
    "the body must be a JSON object with a string \"channel\" "
    "({\"channel\",\"event\",\"data\",...}, photon-core's form)";
inline constexpr std::string_view kOnlyGetOrPost =
    "/channels takes GET (subscribe) or POST (publish)";
inline constexpr std::string_view kBadLastEventId =
    "Last-Event-ID must be an event id (at most 256 bytes)";
inline constexpr std::string_view kEventsMissed =
    "messages after event % may have been missed: the daemon keeps the last % of a channel%, "
    "within its window for all channels (docs/channels.md)";
inline constexpr std::string_view kEventsMissedAge = ", for % at most";
inline constexpr std::string_view kTooManyStreams = "too many open WebSockets and event streams";
inline constexpr std::string_view kNotAWebSocket = "/ws is a WebSocket: send Upgrade: websocket";
inline constexpr std::string_view kNoChannels =
    "name at least one channel: /events?channel=board:*";
inline constexpr std::string_view kTooManyChannels = "at most % channels per event stream";
inline constexpr std::string_view kBadChannel = "channel \"%\": %";
inline constexpr std::string_view kHostMissing = "a Host header is required";
inline constexpr std::string_view kHostNotLoopback =
    "host \"%\" is not this listener's loopback address (127.0.0.1, localhost or [::1] with port "
    "%)";
inline constexpr std::string_view kOriginNotAllowed =
    "origin \"%\" is not allowed (see --ui-allow-origin)";
// The webhook listener (docs/webhooks.md).
inline constexpr std::string_view kWebhookOriginNotAllowed = "origin % is not allowed";
inline constexpr std::string_view kInvalidTarget = "invalid request target";
inline constexpr std::string_view kNoSuchEndpoint =
    "no such endpoint: webhooks are POST /webhook/{method}";
inline constexpr std::string_view kPostOnly = "HTTP method not allowed: use POST";
inline constexpr std::string_view kInvalidForm = "invalid form body";
inline constexpr std::string_view kBadPayload = "payload: %";
inline constexpr std::string_view kAlreadyDelivered = "webhook-id % was already delivered";
inline constexpr std::string_view kTooManyWebhookCalls =
    "% webhook calls are running (limit %); retry later";
// Unlike RefusalCode::kUnknownMethod, it does not list the methods: anyone who can reach the
// listener may send it, and the names are the photon's owner's business.
inline constexpr std::string_view kUnknownWebhookMethod = "unknown method \"%\"";
}  // namespace http

// The sentence of each refusal code, in the enum's order.
inline constexpr std::array<std::string_view, static_cast<std::size_t>(RefusalCode::kCount)>
    kRefusalSentences{
        "the daemon is shutting down",
        "too many subscriptions on this connection (limit %)",
        "too many subscriptions in the daemon (limit %)",
        "too many locks held (limit %)",
        "too many waiting lock requests on this connection (limit %)",
        "too many waiting lock requests (limit %)",
        "cannot issue a fencing token: %",
        "cannot issue a fencing token: the next token would exceed 9007199254740991 (2^53 - 1, the "
        "largest integer a JavaScript number holds exactly)",
        "lock service unavailable: %",
        "photon \"%\" has no methods (serve a manifest with --manifest, or a C++ photon)",
        "unknown method \"%\"; available: %",
        "a command with id \"%\" is already running on this connection (ids must be unique)",
        "too many commands running on this connection (limit %)",
        "too many commands running in the daemon (limit %)",
        "no command with id \"%\" is running on this connection",
        "too many sessions (limit %)",
        "method % is already running % times (max_concurrent %)",
        "% methods are running already (limit %)",
        "too many jobs (limit %)",
        "no job \"%\"",
        "job history unavailable: %",
        "too many runs of this job are running",
        "jobs cannot be saved now (%); try again",
        "channel \"%\" is persistent and % of its messages wait to be written; try again",
        "channel \"%\" is persistent and the message could not be written (see the daemon's log); "
        "it may not be kept",
    };

}  // namespace photon::protocol::messages

namespace photon::protocol {

// Fills the '%'s of a message template with `values`, in order; a '%' without a value stays.
inline std::string fill_message(std::string_view message_template,
                                std::initializer_list<std::string_view> values) {
  std::string out;
  out.reserve(message_template.size() + 32);
  auto value = values.begin();
  for (char c : message_template) {
    if (c == '%' && value != values.end()) {
      out += *value++;
    } else {
      out += c;
    }
  }
  return out;
}

// Fills the single '%' of a message template with `value`.
inline std::string fill_message(std::string_view message_template, std::string_view value) {
  return fill_message(message_template, {value});
}

// The sentence template of a refusal code ('%' for each value).
constexpr std::string_view sentence_of(RefusalCode code) {
  return messages::kRefusalSentences[static_cast<std::size_t>(code)];
}

// The sentence a client reads for `refused`.
inline std::string describe(const Refused& refused) {
  std::string out;
  const std::string_view sentence = sentence_of(refused.code);
  auto value = refused.values.begin();
  for (char c : sentence) {
    if (c == '%' && value != refused.values.end()) {
      out += *value++;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace photon::protocol
