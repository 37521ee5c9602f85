// WebhookService: route, check the origin and the signature, turn the body into arguments, call
// the method, answer with its outcome (or at once with 202 in async mode).
#include "webhooks/webhooks.hpp"

#include "common/defaults.hpp"
#include "common/utf8.hpp"
#include "protocol/error_messages.hpp"
#include "protocol/request.hpp"

#include <boost/json.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>

namespace photon::core {
namespace {

namespace json = boost::json;
namespace words = protocol::messages::http;
using protocol::fill_message;

constexpr std::size_t kMaxJsonDepth = defaults::kMaxJsonDepth;

std::string error_body(std::string_view message) {
  return json::serialize(json::object{{"error", message}});
}

WebhookResponse error_response(unsigned status, std::string_view message) {
  return {status, {}, error_body(message)};
}

std::optional<std::string_view> header(const WebhookRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  return std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
}

// Parses `text` as a JSON object with a depth limit; the error to answer otherwise.
std::variant<json::object, std::string> parse_object(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value value = json::parse(text, ec, {}, options);
  if (ec) return "invalid JSON: " + ec.message();
  if (!value.is_object()) return std::string("the body must be a JSON object");
  return std::move(value.get_object());
}

}  // namespace

// One webhook call in flight: the method's observer.
class WebhookService::Call final : public CallObserver {
 public:
  Call(std::weak_ptr<WebhookService*> service, std::string method, std::string run_id, bool async,
       std::vector<std::pair<std::string, std::string>> cors, WebhookRespond respond)
      : service_(std::move(service)),
        method(std::move(method)),
        run_id(std::move(run_id)),
        async(async),
        cors(std::move(cors)),
        respond(std::move(respond)) {}

  void on_emit(json::object event) override {
    const json::value* channel = event.if_contains("channel");
    if (channel == nullptr || !channel->is_string()) return;  // progress has nobody to go to
    if (protocol::channel_name_error(channel->get_string(), false)) return;
    if (auto owner = service_.lock()) {
      (*owner)->publisher_.publish(std::string(channel->get_string()),
                                   json::value(std::move(event)));
    }
  }
  void on_prompt(json::object, PromptAnswer answer) override { answer(std::nullopt); }
  void on_finish(CallOutcome outcome) override {
    if (auto owner = service_.lock()) {
      (*owner)->finished(*this, outcome);
    } else if (respond && !async) {
      respond(error_response(503, protocol::sentence_of(RefusalCode::kShuttingDown)));
    }
  }

 private:
  std::weak_ptr<WebhookService*> service_;

 public:
  const std::string method;
  const std::string run_id;
  const bool async;
  const std::vector<std::pair<std::string, std::string>> cors;
  WebhookRespond respond;
};

WebhookService::WebhookService(WebhookOptions options, const Clock& clock, MethodHost* methods,
                               JobPublisher& publisher)
    : options_(std::move(options)),
      clock_(clock),
      methods_(methods),
      publisher_(publisher),
      replays_(options_.tolerance) {}

WebhookService::~WebhookService() = default;

WebhookScheme WebhookService::scheme_for(std::string_view method) const {
  if (methods_ != nullptr) {
    if (const MethodInfo* info = find_method(*methods_, method);
        info && !info->webhook_auth.empty()) {
      if (auto scheme = webhook_scheme_from_name(info->webhook_auth)) return *scheme;
    }
  }
  return options_.scheme;
}

bool WebhookService::callable(std::string_view method) const {
  if (methods_ == nullptr) return false;
  const MethodInfo* info = find_method(*methods_, method);
  if (info == nullptr) return false;
  const auto& all = methods_->methods();
  const bool photon_marks =
      std::any_of(all.begin(), all.end(), [](const MethodInfo& m) { return m.webhook; });
  if (photon_marks && !info->webhook) return false;
  if (!options_.allowed_methods.empty() && !options_.allowed_methods.contains(method)) return false;
  return true;
}

std::optional<std::string> WebhookService::allowed_origin(std::string_view origin) const {
  for (const std::string& allowed : options_.cors_origins) {
    if (allowed == "*") return std::string(origin);
    if (allowed.size() > 2 && allowed.ends_with(":*")) {
      // "http://localhost:*": the scheme and host, then any port (or none).
      const std::string_view base(allowed.data(), allowed.size() - 2);
      if (origin == base) return std::string(origin);
      if (origin.size() > base.size() + 1 && origin.starts_with(base) &&
          origin[base.size()] == ':' &&
          std::all_of(origin.begin() + static_cast<std::ptrdiff_t>(base.size()) + 1, origin.end(),
                      [](char c) { return c >= '0' && c <= '9'; })) {
        return std::string(origin);
      }
    } else if (origin == allowed) {
      return std::string(origin);
    }
  }
  return std::nullopt;
}

void WebhookService::handle(WebhookRequest request, WebhookRespond respond) {
  // CORS first: a browser's request from an origin not allowed gets nothing but a refusal.
  std::vector<std::pair<std::string, std::string>> cors;
  if (auto origin = header(request, "origin")) {
    std::optional<std::string> allowed = allowed_origin(*origin);
    if (!allowed)
      return respond(
          error_response(403, fill_message(words::kWebhookOriginNotAllowed, valid_utf8(*origin))));
    cors.emplace_back("Access-Control-Allow-Origin", *allowed);
    cors.emplace_back("Vary", "Origin");
  }
  auto answer = [&](WebhookResponse response) {
    response.headers.insert(response.headers.end(), cors.begin(), cors.end());
    respond(std::move(response));
  };
  if (stopping_)
    return answer(error_response(503, protocol::sentence_of(RefusalCode::kShuttingDown)));

  // The origin form ("/webhook/m?x=1") is what senders use; the absolute form
  // ("http://host/webhook/m") must be accepted too (RFC 9112, 3.2.2).
  boost::system::result<boost::urls::url_view> url =
      request.target.starts_with("/") ? boost::urls::parse_origin_form(request.target)
                                      : boost::urls::parse_absolute_uri(request.target);
  if (!url) return answer(error_response(400, words::kInvalidTarget));
  std::vector<std::string> segments;
  for (const auto& segment : url->segments()) segments.push_back(std::string(segment));
  if (segments.size() != 2 || segments[0] != "webhook" || segments[1].empty()) {
    return answer(error_response(404, words::kNoSuchEndpoint));
  }
  const std::string& method = segments[1];

  if (request.method == "OPTIONS") {
    WebhookResponse preflight{204, {}, {}};
    preflight.headers = {{"Access-Control-Allow-Methods", "POST, OPTIONS"},
                         {"Access-Control-Allow-Headers",
                          "Content-Type, Prefer, X-Webhook-Secret, X-Hub-Signature-256, "
                          "Stripe-Signature, webhook-id, webhook-timestamp, webhook-signature"},
                         {"Access-Control-Max-Age", "600"}};
    return answer(std::move(preflight));
  }
  if (request.method != "POST") {
    WebhookResponse refused = error_response(405, words::kPostOnly);
    refused.headers.emplace_back("Allow", "POST, OPTIONS");
    return answer(std::move(refused));
  }
  if (!callable(method)) {
    return answer(
        error_response(404, fill_message(words::kUnknownWebhookMethod, valid_utf8(method))));
  }

  const WebhookScheme scheme = scheme_for(method);
  std::string delivery_id;  // Standard Webhooks: recorded once the request is accepted
  if (scheme != WebhookScheme::kNone) {
    auto secret = options_.secrets.find(scheme);
    const std::string_view key =
        secret == options_.secrets.end() ? std::string_view() : secret->second;
    const WebhookAuthResult auth = verify_webhook(
        scheme, key, [&](std::string_view name) { return header(request, name); }, request.body,
        clock_.system(), options_.tolerance);
    if (!auth.ok) return answer(error_response(401, auth.reason));
    delivery_id = auth.delivery_id;
  }

  // The body: JSON (the default), or a form (GitHub's `payload=<json>`, or plain fields).
  json::object args;
  const std::string_view content_type =
      header(request, "content-type").value_or("application/json");
  const bool looks_like_json = request.body.find_first_not_of(" \t\r\n") != std::string::npos &&
                               request.body[request.body.find_first_not_of(" \t\r\n")] == '{';
  // `curl -d '{...}'` labels JSON as a form: a body that is a JSON object is taken as one.
  if (iequals_prefix(content_type, "application/x-www-form-urlencoded") && !looks_like_json) {
    auto encoded = boost::urls::parse_query(request.body);
    if (!encoded) return answer(error_response(400, words::kInvalidForm));
    boost::urls::encoding_opts form;
    form.space_as_plus = true;
    for (const auto& param : boost::urls::params_view(request.body, form)) {
      args[valid_utf8(param.key)] =
          param.has_value ? json::value(json::string(valid_utf8(param.value))) : json::value(true);
    }
    if (args.size() == 1 && args.contains("payload") && args["payload"].is_string()) {
      auto payload = parse_object(args["payload"].as_string());
      if (auto* error = std::get_if<std::string>(&payload))
        return answer(error_response(400, fill_message(words::kBadPayload, *error)));
      args = std::move(std::get<json::object>(payload));
    }
  } else if (!request.body.empty()) {
    auto parsed = parse_object(request.body);
    if (auto* error = std::get_if<std::string>(&parsed)) return answer(error_response(400, *error));
    args = std::move(std::get<json::object>(parsed));
  }

  json::object headers;
  // Header values and the query are bytes from outside: made valid UTF-8 for the JSON arguments.
  // The shared secret stays out: a method that echoes its arguments must not publish it.
  for (const auto& [name, value] : request.headers) {
    const std::string key = valid_utf8(name);
    if (key == "x-webhook-secret" || key == "authorization") continue;
    if (!headers.contains(key)) headers[key] = valid_utf8(value);
  }
  json::object query;
  bool async = false;
  for (const auto& param : url->params()) {
    query[valid_utf8(param.key)] = valid_utf8(param.value);
    if (param.key == "async" && (param.value == "1" || param.value == "true")) async = true;
  }
  if (auto prefer = header(request, "prefer");
      prefer && prefer->find("respond-async") != std::string_view::npos) {
    async = true;
  }
  const EpochMillis now = epoch_millis(clock_.system());
  args["_webhook"] = json::object{{"method", method},
                                  {"headers", std::move(headers)},
                                  {"query", std::move(query)},
                                  {"timestamp", now}};

  // The limit first: a delivery refused with 429 may be retried with the same webhook-id.
  if (running_ >= options_.max_running) {
    return answer(error_response(
        429, fill_message(words::kTooManyWebhookCalls,
                          {std::to_string(running_), std::to_string(options_.max_running)})));
  }
  if (scheme == WebhookScheme::kStandard &&
      !replays_.first_delivery(delivery_id, clock_.system())) {
    return answer(
        error_response(401, fill_message(words::kAlreadyDelivered, valid_utf8(delivery_id))));
  }
  publisher_.publish("webhooks:" + options_.photon_name,
                     json::object{{"event", "webhook-received"},
                                  {"data", {{"method", method}, {"timestamp", now}}}});
  call(method, std::move(args), async, std::move(cors), std::move(respond));
}

void WebhookService::call(std::string method, json::object args, bool async,
                          std::vector<std::pair<std::string, std::string>> cors,
                          WebhookRespond respond) {
  const std::string run_id = "wh_" + std::to_string(next_run_++);
  if (async) {
    WebhookResponse accepted{202, cors,
                             json::serialize(json::object{{"accepted", true}, {"runId", run_id}})};
    respond(std::move(accepted));
    respond = nullptr;
  }
  ++running_;
  auto call =
      std::make_shared<Call>(self_, method, run_id, async, std::move(cors), std::move(respond));
  methods_->start({std::move(method), std::move(args), "webhook", "webhook"}, std::move(call));
}

void WebhookService::finished(const Call& call, const CallOutcome& outcome) {
  --running_;
  if (call.async) {
    json::object data{{"runId", call.run_id}, {"method", call.method}};
    if (outcome.ok()) {
      data["data"] = outcome.data;
    } else {
      data["error"] = outcome.error;
    }
    publisher_.publish(
        "webhooks:" + options_.photon_name,
        json::object{{"event", outcome.ok() ? "webhook-completed" : "webhook-failed"},
                     {"data", std::move(data)}});
    return;
  }
  WebhookResponse response;
  switch (outcome.status) {
    case CallStatus::kOk:
      response = {
          200, {}, json::serialize(json::object{{"success", true}, {"data", outcome.data}})};
      break;
    case CallStatus::kBusy:
      response = error_response(429, outcome.error);
      break;
    case CallStatus::kCancelled:
      response = error_response(503, outcome.error);
      break;
    case CallStatus::kFailed:
    case CallStatus::kTimedOut:
      response = error_response(500, outcome.error);
      break;
  }
  response.headers.insert(response.headers.end(), call.cors.begin(), call.cors.end());
  call.respond(std::move(response));
}

}  // namespace photon::core
