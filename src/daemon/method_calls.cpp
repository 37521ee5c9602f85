// Command calls: limits, callers, prompts and their deadlines.
#include "daemon/method_calls.hpp"

#include "methods/method_args.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/request.hpp"

namespace photon::daemon {

// One running `command`: the observer its method host reports to. It outlives its caller's
// connection when the caller leaves (the method runs on; what it sends then goes nowhere but its
// channels).
class MethodCalls::Call final : public core::CallObserver {
 public:
  Call(std::weak_ptr<MethodCalls*> owner, core::ConnectionId caller,
       const core::Subscriber* subscriber, std::string id)
      : caller(caller), subscriber(subscriber), id(std::move(id)), owner_(std::move(owner)) {}

  void on_emit(boost::json::object event) override {
    if (auto owner = owner_.lock()) (*owner)->emitted(*this, std::move(event));
  }
  void on_prompt(boost::json::object prompt, core::PromptAnswer answer) override {
    if (auto owner = owner_.lock()) {
      (*owner)->prompted(*this, std::move(prompt), std::move(answer));
    } else {
      answer(std::nullopt);
    }
  }
  void on_finish(core::CallOutcome outcome) override {
    if (auto owner = owner_.lock()) (*owner)->finished(*this, std::move(outcome));
  }

  // The caller; nothing once its connection has closed.
  std::optional<core::ConnectionId> caller;
  const core::Subscriber* subscriber;
  const std::string id;
  // The prompt waiting for its answer, if any, and its entry in prompt_deadlines_.
  core::PromptAnswer pending_answer;
  std::multimap<std::chrono::steady_clock::time_point, Call*>::iterator deadline;

 private:
  std::weak_ptr<MethodCalls*> owner_;
};

MethodCalls::MethodCalls(const Clock& clock, core::MethodHost* methods, MethodCallLimits limits,
                         Publish publish)
    : clock_(clock), methods_(methods), limits_(limits), publish_(std::move(publish)) {}

MethodCalls::~MethodCalls() = default;

void MethodCalls::set_listener(CallListener* listener, std::function<void()> changed) {
  listener_ = listener;
  changed_ = std::move(changed);
}

std::optional<CallRefused> MethodCalls::start(core::ConnectionId caller,
                                              const core::Subscriber* subscriber, std::string id,
                                              core::CallRequest request) {
  if (methods_ == nullptr) return CallRefused{CallRefusal::kNoMethods};
  const core::MethodInfo* info = core::find_method(*methods_, request.method);
  if (info == nullptr) return CallRefused{CallRefusal::kUnknownMethod};
  auto& commands = by_caller_[caller];
  const auto refuse = [&](CallRefused refused) {
    if (commands.empty()) by_caller_.erase(caller);
    return refused;
  };
  if (commands.contains(id)) return refuse({CallRefusal::kDuplicateId});
  if (commands.size() >= limits_.per_connection) {
    return refuse({CallRefusal::kTooManyOnConnection, limits_.per_connection});
  }
  if (running_ >= limits_.in_daemon) {
    return refuse({CallRefusal::kTooManyInDaemon, limits_.in_daemon});
  }
  if (auto problem = core::check_call_args(*info, request.args)) {
    return refuse({CallRefusal::kBadArgs, 0, std::move(*problem)});
  }
  auto call = std::make_shared<Call>(self_, caller, subscriber, std::move(id));
  commands.emplace(call->id, call);
  ++running_;
  methods_->start(std::move(request), std::move(call));
  return std::nullopt;
}

MethodCalls::AnswerOutcome MethodCalls::answer(core::ConnectionId caller, std::string_view id,
                                               std::optional<boost::json::value> answer) {
  auto commands = by_caller_.find(caller);
  if (commands == by_caller_.end()) return AnswerOutcome::kNoCommand;
  auto found = commands->second.find(id);
  if (found == commands->second.end()) return AnswerOutcome::kNoCommand;
  Call& call = *found->second;
  if (!call.pending_answer) return AnswerOutcome::kNotWaiting;
  answer_prompt(call, std::move(answer));
  return AnswerOutcome::kAnswered;
}

void MethodCalls::emitted(Call& call, boost::json::object event) {
  const boost::json::value* channel = event.if_contains("channel");
  if (channel == nullptr) {
    if (call.caller && listener_) listener_->call_emitted(*call.caller, call.id, event);
    return;
  }
  // The whole event is the message, as the spec's daemon publishes it; the caller's own
  // connection is excluded like any publisher's.
  std::optional<std::string> invalid =
      channel->is_string() ? protocol::channel_name_error(channel->get_string(), false)
                           : std::optional<std::string>(protocol::messages::kChannelNotString);
  if (invalid) {
    if (call.caller && listener_)
      listener_->call_emit_refused(*call.caller, call.id, std::move(event), *invalid);
    return;
  }
  const std::string name(channel->get_string());
  const boost::json::value message(std::move(event));
  publish_(name, call.caller ? call.subscriber : nullptr, message);
}

void MethodCalls::prompted(Call& call, boost::json::object prompt, core::PromptAnswer answer) {
  // No caller to ask, or a second prompt while one waits (one question at a time per call).
  if (!call.caller || !listener_ || call.pending_answer) {
    answer(std::nullopt);
    return;
  }
  call.pending_answer = std::move(answer);
  call.deadline = prompt_deadlines_.emplace(clock_.steady() + limits_.prompt_timeout, &call);
  listener_->call_prompted(*call.caller, call.id, prompt);
  if (changed_) changed_();
}

void MethodCalls::answer_prompt(Call& call, std::optional<boost::json::value> answer) {
  core::PromptAnswer pending = std::move(call.pending_answer);
  call.pending_answer = nullptr;
  prompt_deadlines_.erase(call.deadline);
  pending(std::move(answer));
}

void MethodCalls::finished(Call& call, core::CallOutcome outcome) {
  --running_;
  if (call.pending_answer) answer_prompt(call, std::nullopt);
  if (!call.caller) return;
  const core::ConnectionId caller = *call.caller;
  if (listener_) listener_->call_finished(caller, call.id, outcome);
  auto commands = by_caller_.find(caller);
  if (commands != by_caller_.end()) {
    const std::string id = call.id;
    commands->second.erase(id);  // may destroy `call`
    if (commands->second.empty()) by_caller_.erase(commands);
  }
  if (changed_) changed_();
}

void MethodCalls::connection_closed(core::ConnectionId caller) {
  auto commands = by_caller_.find(caller);
  if (commands == by_caller_.end()) return;
  // Its commands run on without a caller: prompts get no answer, the rest goes nowhere. All are
  // cut off before any prompt is answered, so a method that ends on its answer finds no caller.
  auto calls = std::move(commands->second);
  by_caller_.erase(commands);
  for (auto& [id, call] : calls) call->caller.reset();
  for (auto& [id, call] : calls) {
    if (call->pending_answer) answer_prompt(*call, std::nullopt);
  }
}

void MethodCalls::expire_due() {
  const auto now = clock_.steady();
  while (!prompt_deadlines_.empty() && prompt_deadlines_.begin()->first <= now) {
    answer_prompt(*prompt_deadlines_.begin()->second, std::nullopt);
  }
}

std::optional<std::chrono::steady_clock::time_point> MethodCalls::next_deadline() const {
  if (prompt_deadlines_.empty()) return std::nullopt;
  return prompt_deadlines_.begin()->first;
}

}  // namespace photon::daemon
