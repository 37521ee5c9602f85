// EmbeddedHost: sessions and their instances on the loop thread, method bodies on the pool, and
// every report back to the loop through one strand (so a call's emits arrive before its end).
#include "methods/embedded_host.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>

namespace photon {

Prompt Prompt::text(std::string message, std::string default_value) {
  Prompt prompt{"text", std::move(message)};
  if (!default_value.empty()) prompt.default_value = boost::json::string(default_value);
  return prompt;
}

Prompt Prompt::password(std::string message) { return Prompt{"password", std::move(message)}; }

Prompt Prompt::confirm(std::string message, bool default_value) {
  return Prompt{"confirm", std::move(message), default_value};
}

Prompt Prompt::select(std::string message, boost::json::array options, std::string default_value) {
  Prompt prompt{"select", std::move(message)};
  prompt.options = std::move(options);
  if (!default_value.empty()) prompt.default_value = boost::json::string(default_value);
  return prompt;
}

boost::json::object Prompt::to_json() const {
  boost::json::object json{{"type", type}, {"message", message}};
  if (!default_value.is_null()) json["default"] = default_value;
  if (!options.empty()) json["options"] = options;
  return json;
}

std::optional<bool> Context::confirm(std::string message, bool default_value) {
  std::optional<boost::json::value> answer =
      prompt(Prompt::confirm(std::move(message), default_value));
  if (!answer) return std::nullopt;
  if (answer->is_bool()) return answer->get_bool();
  // Clients that answer in words (a CLI passing the typed text along).
  if (answer->is_string()) {
    const std::string_view text = answer->get_string();
    if (text == "y" || text == "yes" || text == "true") return true;
    if (text == "n" || text == "no" || text == "false") return false;
  }
  return std::nullopt;
}

}  // namespace photon

namespace photon::core {
namespace asio = boost::asio;

namespace {

// How often a blocked prompt looks at the cancellation flag.
constexpr auto kCancelPoll = std::chrono::milliseconds(100);

// The Context of one call, on the pool thread running it.
class CallContext final : public photon::Context {
 public:
  CallContext(asio::any_io_executor loop, std::shared_ptr<CallObserver> observer,
              const CallRequest& request, std::shared_ptr<std::atomic<bool>> cancelled)
      : loop_(std::move(loop)),
        observer_(std::move(observer)),
        request_(request),
        cancelled_(std::move(cancelled)) {}

  const std::string& session_id() const override { return request_.session_id; }
  const std::string& client_type() const override { return request_.client_type; }
  const std::string& method() const override { return request_.method; }
  bool cancelled() const override { return cancelled_->load(std::memory_order_relaxed); }

  void emit(boost::json::object event) override {
    asio::post(loop_, [observer = observer_, event = std::move(event)]() mutable {
      observer->on_emit(std::move(event));
    });
  }

  std::optional<boost::json::value> prompt(const photon::Prompt& prompt) override {
    // Shared with the answer callback, which may run after this call has given up waiting.
    struct Answer {
      std::mutex mutex;
      std::condition_variable ready;
      bool answered = false;
      std::optional<boost::json::value> value;
    };
    auto answer = std::make_shared<Answer>();
    asio::post(loop_, [observer = observer_, json = prompt.to_json(), answer]() mutable {
      observer->on_prompt(std::move(json), [answer](std::optional<boost::json::value> value) {
        std::lock_guard lock(answer->mutex);
        answer->answered = true;
        answer->value = std::move(value);
        answer->ready.notify_one();
      });
    });
    std::unique_lock lock(answer->mutex);
    while (!answer->answered) {
      if (cancelled()) return std::nullopt;
      answer->ready.wait_for(lock, kCancelPoll);
    }
    return std::move(answer->value);
  }

 private:
  asio::any_io_executor loop_;
  std::shared_ptr<CallObserver> observer_;
  const CallRequest& request_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

std::chrono::milliseconds expiry_period(std::chrono::milliseconds session_timeout) {
  return std::clamp(session_timeout / 10, std::chrono::milliseconds(100),
                    std::chrono::milliseconds(30'000));
}

}  // namespace

// A session's photon object, made on a pool thread by the session's first call.
struct EmbeddedHost::Instance {
  std::once_flag made;
  std::shared_ptr<void> object;
  std::string error;  // why it could not be made
};

EmbeddedHost::EmbeddedHost(asio::any_io_executor loop, const Clock& clock,
                           PhotonDefinition definition, EmbeddedHostOptions options)
    : loop_(asio::make_strand(loop)),
      clock_(clock),
      definition_(std::move(definition)),
      options_(options),
      expiry_timer_(loop),
      pool_(std::max<std::size_t>(options.threads, 1)) {
  for (const PhotonDefinition::Entry& entry : definition_.methods) {
    MethodInfo info{entry.name, entry.description, {}, entry.webhook, entry.webhook_auth};
    for (const photon::Param& param : entry.params) {
      info.params.push_back({param.name, param.type, param.description, param.required});
    }
    infos_.push_back(std::move(info));
  }
  arm_expiry_timer();
}

EmbeddedHost::~EmbeddedHost() {
  cancelled_->store(true);
  expiry_timer_.cancel();
  pool_.join();
}

void EmbeddedHost::finish_later(std::shared_ptr<CallObserver> observer, CallOutcome outcome) {
  asio::post(loop_, [observer = std::move(observer), outcome = std::move(outcome)]() mutable {
    observer->on_finish(std::move(outcome));
  });
}

void EmbeddedHost::start(CallRequest request, std::shared_ptr<CallObserver> observer) {
  if (cancelled_->load()) {
    return finish_later(std::move(observer),
                        CallOutcome::refused(CallStatus::kCancelled, {RefusalCode::kShuttingDown}));
  }
  auto session = sessions_.find(request.session_id);
  if (session == sessions_.end()) {
    if (sessions_.size() >= options_.max_sessions) {
      return finish_later(
          std::move(observer),
          CallOutcome::refused(CallStatus::kBusy, {RefusalCode::kTooManySessions,
                                                   {std::to_string(options_.max_sessions)}}));
    }
    session = sessions_.emplace(request.session_id, Session{}).first;
    session->second.instance = std::make_shared<Instance>();
  }
  session->second.last_used = clock_.steady();
  ++running_;
  Pending call{std::move(request), std::move(observer)};
  if (!definition_.concurrent && session->second.running > 0) {
    session->second.queue.push_back(std::move(call));
    return;
  }
  run(session, std::move(call));
}

void EmbeddedHost::run(SessionMap::iterator session, Pending call) {
  ++session->second.running;
  if (!session->second.instance) session->second.instance = std::make_shared<Instance>();
  const PhotonDefinition::Entry* entry = nullptr;
  for (const auto& candidate : definition_.methods) {
    if (candidate.name == call.request.method) entry = &candidate;
  }
  // Everything the pool thread touches is captured here or const in the definition (which the
  // destructor keeps alive by joining the pool).
  asio::post(pool_, [this, entry, instance = session->second.instance, call = std::move(call)] {
    std::call_once(instance->made, [&] {
      try {
        instance->object = definition_.create();
      } catch (const std::exception& error) {
        instance->error = error.what();
      } catch (...) {
        instance->error = "unknown exception";
      }
    });
    CallOutcome outcome;
    bool instance_failed = false;
    if (!instance->object) {
      instance_failed = true;
      outcome = CallOutcome::failure(
          CallStatus::kFailed, protocol::fill_message(protocol::messages::kSessionNotCreated,
                                                      {call.request.session_id, instance->error}));
    } else if (entry == nullptr) {
      outcome =
          CallOutcome::refused(CallStatus::kFailed, unknown_method(call.request.method, methods()));
    } else {
      CallContext context(loop_, call.observer, call.request, cancelled_);
      try {
        outcome =
            CallOutcome::success(entry->call(instance->object.get(), context, call.request.args));
      } catch (const std::exception& error) {
        outcome = CallOutcome::failure(CallStatus::kFailed, error.what());
      } catch (...) {
        outcome = CallOutcome::failure(
            CallStatus::kFailed,
            protocol::fill_message(protocol::messages::kNonStandardException, call.request.method));
      }
    }
    asio::post(loop_, [this, session_id = call.request.session_id, observer = call.observer,
                       outcome = std::move(outcome), instance_failed, instance]() mutable {
      if (instance_failed) {
        // The next call of the session tries again with a fresh instance (unless one has been
        // made meanwhile).
        if (auto session = sessions_.find(session_id);
            session != sessions_.end() && session->second.instance == instance) {
          session->second.instance.reset();
        }
      }
      finished(session_id, observer, std::move(outcome));
    });
  });
}

void EmbeddedHost::finished(const std::string& session_id,
                            const std::shared_ptr<CallObserver>& observer, CallOutcome outcome) {
  --running_;
  if (auto session = sessions_.find(session_id); session != sessions_.end()) {
    Session& state = session->second;
    --state.running;
    state.last_used = clock_.steady();
    if (!state.queue.empty() && (definition_.concurrent || state.running == 0)) {
      Pending next = std::move(state.queue.front());
      state.queue.pop_front();
      run(session, std::move(next));
    }
  }
  observer->on_finish(std::move(outcome));
  check_done();
}

void EmbeddedHost::cancel_all(std::function<void()> done) {
  cancelled_->store(true);
  for (auto& [id, session] : sessions_) {
    for (Pending& queued : session.queue) {
      --running_;
      finish_later(std::move(queued.observer),
                   CallOutcome::refused(CallStatus::kCancelled, {RefusalCode::kShuttingDown}));
    }
    session.queue.clear();
  }
  on_idle_after_cancel_ = std::move(done);
  check_done();
}

void EmbeddedHost::check_done() {
  if (running_ != 0 || !on_idle_after_cancel_) return;
  asio::post(loop_, std::exchange(on_idle_after_cancel_, nullptr));
}

void EmbeddedHost::expire_idle_sessions() {
  const auto now = clock_.steady();
  for (auto session = sessions_.begin(); session != sessions_.end();) {
    const Session& state = session->second;
    if (state.running == 0 && state.queue.empty() &&
        now - state.last_used >= options_.session_timeout) {
      spdlog::debug("session \"{}\" expired after {} ms idle", session->first,
                    options_.session_timeout.count());
      // The photon's destructor may be slow (it may save state): run it on the pool.
      asio::post(pool_, [instance = std::move(session->second.instance)] {});
      session = sessions_.erase(session);
    } else {
      ++session;
    }
  }
}

void EmbeddedHost::arm_expiry_timer() {
  expiry_timer_.expires_after(expiry_period(options_.session_timeout));
  expiry_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || cancelled_->load()) return;
    expire_idle_sessions();
    arm_expiry_timer();
  });
}

}  // namespace photon::core
