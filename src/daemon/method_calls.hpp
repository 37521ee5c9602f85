// The `command` calls running in the daemon: each one's caller, its limits, the prompt it waits on
// and that prompt's deadline. The dispatch layer writes what callers read (CallListener).
#pragma once

#include "channels/channel_registry.hpp"
#include "common/clock.hpp"
#include "locks/lock_table.hpp"
#include "methods/method_host.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace photon::daemon {

// What a running call reports for its caller's connection; never called for a caller that left.
class CallListener {
 public:
  virtual ~CallListener() = default;
  // Progress for the caller (an emit without a channel).
  virtual void call_emitted(core::ConnectionId caller, std::string_view id,
                            const boost::json::object& event) = 0;
  // An emit whose "channel" is not a valid channel name (`problem` says why): the method's
  // mistake, shown to its caller so it is noticed; nothing is published.
  virtual void call_emit_refused(core::ConnectionId caller, std::string_view id,
                                 boost::json::object event, std::string_view problem) = 0;
  virtual void call_prompted(core::ConnectionId caller, std::string_view id,
                             const boost::json::object& prompt) = 0;
  virtual void call_finished(core::ConnectionId caller, std::string_view id,
                             const core::CallOutcome& outcome) = 0;
};

// Why a command was not started.
enum class CallRefusal : std::uint8_t {
  kNoMethods,            // the photon has no method host
  kUnknownMethod,        // no method of that name
  kDuplicateId,          // a command with this id runs on the connection already
  kTooManyOnConnection,  // CallRefused::limit commands run on the connection
  kTooManyInDaemon,      // CallRefused::limit commands run in the daemon
  kBadArgs,              // CallRefused::detail says what is wrong with the arguments
};
struct CallRefused {
  CallRefusal code;
  std::size_t limit = 0;
  std::string detail;
};

struct MethodCallLimits {
  std::size_t per_connection = 256;
  std::size_t in_daemon = 4096;
  // How long a prompt waits for its answer before the method gets none.
  std::chrono::milliseconds prompt_timeout{5 * 60 * 1000};
};

// Invariants: a call is in by_caller_ while its caller is connected and it runs; a call waiting
// for a prompt's answer has exactly one entry in prompt_deadlines_; running_ counts calls
// started and not finished (with or without their caller).
// Thread rule: the event loop thread only.
class MethodCalls {
 public:
  // Publishes a channel emit to every subscriber but `exclude` (the caller; null once it left).
  using Publish = std::function<void(std::string_view channel, const core::Subscriber* exclude,
                                     const boost::json::value& message)>;

  // `methods` may be null (every command is refused kNoMethods); it and `clock` outlive this.
  MethodCalls(const Clock& clock, core::MethodHost* methods, MethodCallLimits limits,
              Publish publish);
  ~MethodCalls();

  // Where callers' events go; must be set before start(). `changed` runs when next_deadline()
  // may have moved outside a call of expire_due() (a prompt asked).
  void set_listener(CallListener* listener, std::function<void()> changed);

  // Starts `request` for connection `caller` under request id `id`; `subscriber` is the caller as
  // a channel subscriber (not sent its own channel emits). Nothing on success, else why not.
  std::optional<CallRefused> start(core::ConnectionId caller, const core::Subscriber* subscriber,
                                   std::string id, core::CallRequest request);

  enum class AnswerOutcome {
    kAnswered,    // the method has the answer
    kNotWaiting,  // the command runs but asks nothing now (its prompt timed out): dropped
    kNoCommand,   // no command with this id runs on the connection
  };
  // The caller's answer to its command's prompt (nothing: declined).
  AnswerOutcome answer(core::ConnectionId caller, std::string_view id,
                       std::optional<boost::json::value> answer);

  // The caller's connection closed: its commands run on without it, their prompts get no answer.
  void connection_closed(core::ConnectionId caller);
  // Gives up on prompts whose deadline has passed.
  void expire_due();
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const;

  std::size_t running() const { return running_; }

 private:
  class Call;
  friend class Call;
  void emitted(Call& call, boost::json::object event);
  void prompted(Call& call, boost::json::object prompt, core::PromptAnswer answer);
  void finished(Call& call, core::CallOutcome outcome);
  // Ends the wait of `call`'s prompt, handing `answer` to the method.
  void answer_prompt(Call& call, std::optional<boost::json::value> answer);

  const Clock& clock_;
  core::MethodHost* methods_;
  MethodCallLimits limits_;
  Publish publish_;
  CallListener* listener_ = nullptr;
  std::function<void()> changed_;
  std::size_t running_ = 0;
  // The commands of each connected caller, by request id (which is how prompts are answered).
  std::unordered_map<core::ConnectionId, std::map<std::string, std::shared_ptr<Call>, std::less<>>>
      by_caller_;
  // Prompts waiting for an answer, by deadline (the call keeps its own entry's iterator).
  std::multimap<std::chrono::steady_clock::time_point, Call*> prompt_deadlines_;
  // Calls hold a weak reference: a method still running in its host when this object is gone
  // (daemon teardown) then reports to nobody.
  std::shared_ptr<MethodCalls*> self_ = std::make_shared<MethodCalls*>(this);
};

}  // namespace photon::daemon
