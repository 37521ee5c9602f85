// photonctl webhook NAME, and webhook-send NAME METHOD: the endpoint from the daemon's status, a
// request signed as the scheme says and sent with Beast's synchronous HTTP client.
#include "cli/webhook_command.hpp"

#include "cli/command_line.hpp"
#include "cli/json_text.hpp"
#include "cli/table.hpp"
#include "common/exit_codes.hpp"
#include "common/paths.hpp"
#include "photon/client.hpp"
#include "webhooks/webhook_auth.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <stdexcept>

namespace photon::cli {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using core::WebhookScheme;
using tcp = boost::asio::ip::tcp;

// A response body larger than this is refused (the daemon's own are small JSON objects).
constexpr std::uint64_t kMaxResponseBytes = 16u << 20;

// The daemon answers, but it has no webhook endpoint, or no status for it: exit 1.
struct NoEndpoint : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// status.webhook of photon `name`.
json::object endpoint_of(const std::string& name) {
  if (auto error = photon::photon_name_error(name)) throw UsageError(*error);
  json::object status = photon::Client::connect(name).status();
  const json::value* webhook = status.if_contains("webhook");
  if (webhook == nullptr || !webhook->is_object()) {
    throw NoEndpoint("photon " + name + " serves no webhooks: start it with --webhook-port");
  }
  return webhook->get_object();
}

// The scheme that protects `method`, as the daemon reports it (its own, else the default).
std::string scheme_of(const json::object& endpoint, std::string_view method) {
  if (const json::value* methods = endpoint.if_contains("methods");
      methods && methods->is_array()) {
    for (const json::value& entry : methods->get_array()) {
      if (entry.is_object() && string_member(entry.get_object(), "name") == method) {
        return string_member(entry.get_object(), "auth");
      }
    }
  }
  return string_member(endpoint, "auth");
}

// `method` as one path segment.
std::string path_segment(std::string_view method) {
  return boost::urls::encode(method, boost::urls::unreserved_chars);
}

// The variables the daemon reads the secret of `scheme` from, in its order.
std::string secret_variables(WebhookScheme scheme) {
  return "$" + core::webhook_secret_variable(scheme) + " or $" +
         std::string(core::kWebhookSecretVariable);
}

// How a sender proves itself under `scheme`, for the legend under the table.
std::string_view scheme_summary(WebhookScheme scheme) {
  switch (scheme) {
    case WebhookScheme::kNone:
      return "no check: anyone who reaches the address may call";
    case WebhookScheme::kSecret:
      return "X-Webhook-Secret: the secret itself";
    case WebhookScheme::kGitHub:
      return "X-Hub-Signature-256: sha256=HMAC-SHA256(secret, body) in hex";
    case WebhookScheme::kStripe:
      return "Stripe-Signature: t=TIME,v1=HMAC-SHA256(secret, \"TIME.body\") in hex";
    case WebhookScheme::kStandard:
      return "webhook-id, webhook-timestamp, webhook-signature: v1,base64 HMAC of \"ID.TIME.body\"";
  }
  return "";
}

// The request body: --data, then each key=value over it (typed as for `call`).
std::string body_of(const std::optional<std::string>& data, const std::vector<std::string>& pairs) {
  json::object args;
  if (data) {
    boost::system::error_code ec;
    json::value base = json::parse(*data, ec);
    if (ec || !base.is_object()) throw UsageError("--data must be a JSON object");
    args = std::move(base.get_object());
  }
  for (const std::string& pair : pairs) {
    const auto equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw UsageError("argument \"" + pair + "\" is not key=value");
    }
    args[pair.substr(0, equals)] = loose_json(std::string_view(pair).substr(equals + 1));
  }
  return json::serialize(args);
}

// A fresh Standard Webhooks delivery id ("msg_" and 24 hex digits): each send is a new delivery.
std::string new_delivery_id() {
  std::random_device random;
  std::string bytes;
  for (int i = 0; i < 12; ++i) bytes += static_cast<char>(random() & 0xff);
  return "msg_" + core::to_hex(bytes);
}

struct HttpResult {
  unsigned status = 0;
  std::string reason;
  std::string body;
};

// POSTs `body` to `url` + the encoded method. Throws std::runtime_error when the endpoint cannot
// be reached or answers something that is not HTTP.
HttpResult post(const std::string& url_text, const std::string& method,
                const std::vector<std::pair<std::string, std::string>>& headers,
                const std::string& body) {
  const auto url = boost::urls::parse_uri(url_text);
  if (!url || url->scheme() != "http" || !url->has_port()) {
    throw std::runtime_error("the daemon reports a webhook URL photonctl cannot use: " + url_text);
  }
  std::string target(url->encoded_path());
  if (target.empty() || target.back() != '/') target += '/';
  target += path_segment(method);

  http::request<http::string_body> request(http::verb::post, target, 11);
  request.set(http::field::host, std::string(url->encoded_host_and_port()));
  request.set(http::field::user_agent, "photonctl/" PHOTON_VERSION);
  request.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.keep_alive(false);
  request.body() = body;
  request.prepare_payload();

  try {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.connect(resolver.resolve(url->host_address(), url->port()));
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    http::read(stream, buffer, parser);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    const auto& response = parser.get();
    return {response.result_int(), std::string(response.reason()), response.body()};
  } catch (const boost::system::system_error& error) {
    throw std::runtime_error("POST " + url_text + path_segment(method) + ": " +
                             error.code().message());
  }
}

}  // namespace

WebhookCommands::WebhookCommands(CLI::App& app) {
  show_ = app.add_subcommand("webhook",
                             "Show photon NAME's webhook endpoint: URL, authentication, methods");
  show_->add_option("name", name_, "Photon name")->required();
  show_->footer(
      "Reads the daemon's status. --json prints its `webhook` object.\n"
      "Exit status: 0 ok, 1 the daemon serves no webhooks (start it with --webhook-port),\n"
      "2 usage, 3 daemon not running.");

  send_ = app.add_subcommand("webhook-send", "POST a signed test webhook to METHOD of photon NAME");
  send_->add_option("name", name_, "Photon name")->required();
  send_->add_option("method", method_, "Method name")->required();
  send_->add_option("params", pairs_, "Body fields as key=value (typed as for call)");
  send_->add_option("--data", data_, "The body as a JSON object; key=value pairs win over it");
  send_
      ->add_option("--scheme", scheme_,
                   "Sign as none, secret, github, stripe or standard (default: the method's "
                   "scheme, from the daemon's status)")
      ->check(CLI::IsMember({"none", "secret", "github", "stripe", "standard"}));
  send_->add_flag("--async", async_,
                  "Ask for 202 Accepted at once (Prefer: respond-async); the outcome is published "
                  "on channel webhooks:NAME");
  send_->footer(
      "Finds the URL in the daemon's status, signs the body with the secret the daemon reads\n"
      "($PHOTON_WEBHOOK_SECRET_<SCHEME>, else $PHOTON_WEBHOOK_SECRET), sends it over HTTP and\n"
      "prints the status line and the response body (--json: {\"status\",\"reason\",\"body\"}).\n"
      "Exit status: 0 a 2xx response, 1 any other response or no endpoint, 2 usage (a scheme\n"
      "without its secret too), 3 daemon not running.");
}

int WebhookCommands::run(bool json) const {
  try {
    return *show_ ? show(json) : send(json);
  } catch (const UsageError& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitUsage;
  } catch (const NoEndpoint& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  } catch (const photon::ClientError& error) {
    if (error.kind() == photon::ClientError::Kind::kNotRunning) {
      std::cerr << "photonctl: " << name_ << " is not running (" << error.what() << ")\n";
      return kExitNotRunning;
    }
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  }
}

int WebhookCommands::show(bool json) const {
  const json::object endpoint = endpoint_of(name_);
  if (json) {
    std::cout << json::serialize(endpoint) << "\n";
    return kExitOk;
  }
  const std::string url = string_member(endpoint, "url");
  const std::string fallback = string_member(endpoint, "auth");
  std::cout << "url             " << url << "\n"
            << "authentication  " << fallback << " (unless a method names its own)\n";
  if (const json::value* running = endpoint.if_contains("running")) {
    std::cout << "calls running   " << json::serialize(*running) << "\n";
  }

  std::vector<WebhookScheme> in_use;
  auto note = [&](const std::string& name) {
    auto scheme = core::webhook_scheme_from_name(name);
    if (scheme && std::find(in_use.begin(), in_use.end(), *scheme) == in_use.end()) {
      in_use.push_back(*scheme);
    }
  };
  std::string example;
  Table table({"METHOD", "AUTH", "URL"});
  if (const json::value* methods = endpoint.if_contains("methods");
      methods && methods->is_array()) {
    for (const json::value& entry : methods->get_array()) {
      if (!entry.is_object()) continue;
      const std::string method = string_member(entry.get_object(), "name");
      const std::string auth = string_member(entry.get_object(), "auth");
      note(auth);
      if (example.empty()) example = method;
      table.add_row({method, auth, url + path_segment(method)});
    }
  }
  std::cout << "\n";
  if (example.empty()) {
    note(fallback);
    std::cout << name_ << " has no methods: every webhook is answered 404\n";
  } else {
    table.print(std::cout);
  }
  std::cout << "\n";
  for (WebhookScheme scheme : in_use) {
    std::cout << "  " << core::webhook_scheme_name(scheme) << ": " << scheme_summary(scheme);
    if (scheme != WebhookScheme::kNone) std::cout << "; secret in " << secret_variables(scheme);
    std::cout << "\n";
  }
  std::cout << "\nSend a test: photonctl webhook-send " << name_ << ' '
            << (example.empty() ? "METHOD" : example) << " [key=value...] [--data JSON] [--async]\n"
            << "Async outcomes: photonctl sub " << name_ << " webhooks:" << name_ << "\n";
  return kExitOk;
}

int WebhookCommands::send(bool json) const {
  if (method_.empty()) throw UsageError("METHOD must not be empty");
  const std::string body = body_of(data_, pairs_);
  const json::object endpoint = endpoint_of(name_);
  const std::string scheme_name = scheme_ ? *scheme_ : scheme_of(endpoint, method_);
  const auto scheme = core::webhook_scheme_from_name(scheme_name);
  if (!scheme) {
    throw std::runtime_error("the daemon reports an unknown webhook scheme \"" + scheme_name +
                             "\"");
  }

  std::vector<std::pair<std::string, std::string>> headers;
  if (*scheme != WebhookScheme::kNone) {
    const std::string secret = core::webhook_secret_from_environment(*scheme);
    if (secret.empty()) {
      throw UsageError("signing as " + scheme_name + " needs the secret the daemon uses: set " +
                       secret_variables(*scheme));
    }
    try {
      headers = core::sign_webhook(*scheme, secret, body, std::chrono::system_clock::now(),
                                   new_delivery_id());
    } catch (const std::invalid_argument& error) {
      throw UsageError(std::string("the ") + scheme_name + " secret: " + error.what());
    }
  }
  if (async_) headers.emplace_back("Prefer", "respond-async");

  const HttpResult result = post(string_member(endpoint, "url"), method_, headers, body);
  boost::system::error_code ec;
  json::value parsed = json::parse(result.body, ec);
  const bool ok = result.status >= 200 && result.status < 300;
  if (json) {
    std::cout << json::serialize(json::object{
                     {"status", result.status},
                     {"reason", result.reason},
                     {"body", ec ? json::value(json::string(result.body)) : std::move(parsed)}})
              << "\n";
  } else {
    std::cout << "HTTP/1.1 " << result.status << ' ' << result.reason << "\n";
    if (!ec) {
      std::cout << pretty_json(parsed) << "\n";
    } else if (!result.body.empty()) {
      std::cout << result.body << "\n";
    }
    if (result.status == 202) {
      std::cerr << "the outcome comes on channel webhooks:" << name_ << " (photonctl sub " << name_
                << " webhooks:" << name_ << ")\n";
    }
  }
  return ok ? kExitOk : kExitFailed;
}

}  // namespace photon::cli
