// Webhooks: what an HTTP request to /webhook/{method} means. Routing, CORS, authentication, the
// body as arguments, the method call and its reply. No sockets: the daemon's HTTP server hands
// requests in and sends the responses out, so this is tested (and fuzzed) in process.
#pragma once

#include "common/clock.hpp"
#include "jobs/scheduler.hpp"
#include "methods/method_host.hpp"
#include "webhooks/webhook_auth.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace photon::core {

struct WebhookRequest {
  std::uint64_t id = 0;                                      // for logs
  std::string method;                                        // HTTP verb
  std::string target;                                        // "/webhook/moveTask?async=1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
};

struct WebhookResponse {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // JSON
};

using WebhookRespond = std::function<void(WebhookResponse)>;

struct WebhookOptions {
  std::string photon_name;  // events go to webhooks:<photon_name>
  // Authentication of every method, unless the method names its own scheme.
  WebhookScheme scheme = WebhookScheme::kNone;
  // Secrets by scheme (one secret may serve several schemes).
  std::map<WebhookScheme, std::string> secrets;
  // --webhook-methods: only these may be called (on top of the photon's own marks); empty: no
  // restriction.
  std::set<std::string, std::less<>> allowed_methods;
  // Origins allowed by CORS; a trailing ":*" matches any port.
  std::vector<std::string> cors_origins{"http://localhost:*", "http://127.0.0.1:*"};
  std::chrono::seconds tolerance{300};
  std::size_t max_running = 64;  // webhook calls at once; beyond: 429
};

// Invariants: every request gets exactly one response; a request that fails authentication never
// reaches a method.
// Thread rule: the event loop thread only.
class WebhookService {
 public:
  // `methods` may be null (every method is then unknown). `publisher` gets webhook-received,
  // webhook-completed and webhook-failed on webhooks:<photon>, and methods' channel emits.
  WebhookService(WebhookOptions options, const Clock& clock, MethodHost* methods,
                 JobPublisher& publisher);
  ~WebhookService();

  void handle(WebhookRequest request, WebhookRespond respond);

  // From now on every request is answered 503; calls already running still answer.
  void stop_accepting() { stopping_ = true; }

  // The scheme that protects `method` (its own, else the default).
  WebhookScheme scheme_for(std::string_view method) const;
  std::size_t running() const { return running_; }
  // Whether a webhook may call `method` (it exists, the photon's marks and --webhook-methods
  // allow it).
  bool callable(std::string_view method) const;

 private:
  class Call;
  std::optional<std::string> allowed_origin(std::string_view origin) const;
  void call(std::string method, boost::json::object args, bool async,
            std::vector<std::pair<std::string, std::string>> cors, WebhookRespond respond);
  void finished(const Call& call, const CallOutcome& outcome);

  WebhookOptions options_;
  const Clock& clock_;
  MethodHost* methods_;
  JobPublisher& publisher_;
  ReplayCache replays_;
  std::size_t running_ = 0;
  std::uint64_t next_run_ = 1;
  bool stopping_ = false;
  std::shared_ptr<WebhookService*> self_ = std::make_shared<WebhookService*>(this);
};

}  // namespace photon::core
