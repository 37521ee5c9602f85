// The photon's methods as the daemon sees them, whatever runs them: a C++ class embedded in the
// daemon (core/embedded_host) or scripts named in a manifest (core/exec_host). The `command`
// request, and later jobs and webhooks, call methods only through this interface.
#pragma once

#include "common/refusal.hpp"
#include "protocol/error_messages.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace photon::core {

// One parameter a method documents (shown by list_methods; not enforced by the daemon).
struct ParamInfo {
  std::string name;
  std::string type;  // "string", "number", "boolean", "object", "array" or "any"
  std::string description;
  bool required = true;
};

struct MethodInfo {
  std::string name;
  std::string description;
  std::vector<ParamInfo> params;
  // Webhooks: once any method of a photon is marked, only marked methods answer over HTTP.
  bool webhook = false;
  // The scheme that authenticates this method's webhooks ("github", "stripe", "standard",
  // "secret", "none"); empty: the daemon's default.
  std::string webhook_auth;
};

// One call of a method.
struct CallRequest {
  std::string method;
  boost::json::object args;
  std::string session_id;   // never empty: "default" when the caller named none
  std::string client_type;  // as the caller said ("cli", "mcp", "beam"...), or empty
};

enum class CallStatus {
  kOk,         // `data` is the method's result
  kFailed,     // the method reported an error, threw, or exited non-zero
  kBusy,       // a concurrency limit refused the call (it never started)
  kTimedOut,   // the method ran past its timeout and was stopped
  kCancelled,  // the daemon is shutting down
};

struct CallOutcome {
  CallStatus status = CallStatus::kFailed;
  boost::json::value data;  // kOk: the result (null when the method returned nothing)
  std::string error;        // otherwise: what happened, in words

  static CallOutcome success(boost::json::value data) {
    return {CallStatus::kOk, std::move(data), {}};
  }
  static CallOutcome failure(CallStatus status, std::string error) {
    return {status, nullptr, std::move(error)};
  }
  // A host's refusal (the daemon's words, from the catalogue; `failure` carries the method's own).
  static CallOutcome refused(CallStatus status, const Refused& refusal) {
    return {status, nullptr, protocol::describe(refusal)};
  }
  bool ok() const { return status == CallStatus::kOk; }
};

// Hands a prompt's answer back to the method: the value the caller gave, or nothing when the
// caller declined (promptValue null), left, or did not answer in time.
using PromptAnswer = std::function<void(std::optional<boost::json::value>)>;

// What a running call tells whoever started it. For a `command` the dispatcher implements it and
// forwards to the caller's connection.
// Thread rule: hosts call these on the event loop thread only, never from inside
// MethodHost::start, and never again after on_finish.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // The method emitted `event`. With a string "channel" member it is a channel event, otherwise
  // progress for the caller.
  virtual void on_emit(boost::json::object event) = 0;
  // The method asks its caller a question (the spec's prompt shape: type, message, default,
  // options). The observer calls `answer` exactly once, on the event loop thread; the call may
  // have finished by then (a host must tolerate that).
  virtual void on_prompt(boost::json::object prompt, PromptAnswer answer) = 0;
  // The call is over; called exactly once per started call.
  virtual void on_finish(CallOutcome outcome) = 0;
};

struct HostStats {
  std::size_t running = 0;   // calls started and not yet finished (queued ones included)
  std::size_t sessions = 0;  // live per-session instances (embedded photons)
};

// Thread rule: the event loop thread only.
class MethodHost {
 public:
  virtual ~MethodHost() = default;

  // Every method, in the order the photon declares them.
  virtual const std::vector<MethodInfo>& methods() const = 0;

  // Starts a call of one of methods(). Never blocks; the outcome and everything before it reach
  // `observer` later, on the event loop thread.
  virtual void start(CallRequest request, std::shared_ptr<CallObserver> observer) = 0;

  virtual HostStats stats() const = 0;

  // The daemon is shutting down: running calls are asked to stop (embedded methods see
  // Context::cancelled(); exec children get SIGTERM, then SIGKILL) and finish kCancelled;
  // queued calls finish kCancelled without starting. `done` runs on the loop thread once no
  // call is running.
  virtual void cancel_all(std::function<void()> done) = 0;

  // The daemon's clock was moved by hand (a test clock): whatever the host times by that clock is
  // done now if due (embedded sessions idle past their timeout end). Its own timers check too.
  virtual void check_deadlines() {}
};

// A method by name, or null.
inline const MethodInfo* find_method(const MethodHost& host, std::string_view name) {
  for (const MethodInfo& method : host.methods()) {
    if (method.name == name) return &method;
  }
  return nullptr;
}

// An unknown method's refusal lists at most this many of the available ones.
inline constexpr std::size_t kMethodsListedInError = 50;

// The refusal of an unknown method `name`, with the available ones: at most kMethodsListedInError
// names, then "and N more"; "none" when there are none.
inline Refused unknown_method(std::string_view name, const std::vector<MethodInfo>& methods) {
  std::string available;
  for (std::size_t i = 0; i < methods.size() && i < kMethodsListedInError; ++i) {
    available += (i == 0 ? "" : ", ") + methods[i].name;
  }
  if (methods.size() > kMethodsListedInError) {
    available += " and " + std::to_string(methods.size() - kMethodsListedInError) + " more";
  }
  return {RefusalCode::kUnknownMethod,
          {std::string(name), available.empty() ? std::string("none") : std::move(available)}};
}

}  // namespace photon::core
