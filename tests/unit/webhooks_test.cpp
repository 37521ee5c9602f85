// Unit tests of WebhookService: routing, CORS, authentication, bodies as arguments, replies and
// async mode, with a fake method host and a fake clock.
#include "webhooks/webhooks.hpp"
#include "fake_clock.hpp"
#include "fake_method_host.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace photon::core {
namespace {

namespace json = boost::json;
using FakeHost = testing::FakeMethodHost;

class RecordingPublisher final : public JobPublisher {
 public:
  void publish(const std::string& channel, const json::value& message) override {
    messages.push_back({channel, message});
  }
  std::vector<std::pair<std::string, json::value>> messages;
};

class WebhooksTest : public ::testing::Test {
 protected:
  WebhooksTest() : host_({{"moveTask", "", {}}, {"ping", "", {}}}) { make({}); }

  void make(WebhookOptions options) {
    options.photon_name = "kanban";
    service_ = std::make_unique<WebhookService>(std::move(options), clock_, &host_, publisher_);
  }

  // Sends a request; returns the response if one came at once.
  std::optional<WebhookResponse> send(
      std::string verb, std::string target, std::string body = "{}",
      std::vector<std::pair<std::string, std::string>> headers = {}) {
    last_.reset();
    service_->handle({1, std::move(verb), std::move(target), std::move(headers), std::move(body)},
                     [this](WebhookResponse response) { last_ = std::move(response); });
    return last_;
  }

  static json::value body_of(const WebhookResponse& response) { return json::parse(response.body); }
  static std::optional<std::string> header(const WebhookResponse& response, std::string_view name) {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return std::nullopt;
  }

  testing::FakeClock clock_;
  FakeHost host_;
  RecordingPublisher publisher_;
  std::unique_ptr<WebhookService> service_;
  std::optional<WebhookResponse> last_;
};

TEST_F(WebhooksTest, ACallRunsTheMethodWithTheBodyAndWebhookDetails) {
  EXPECT_FALSE(send("POST", "/webhook/moveTask?source=gh", R"({"taskId":1})",
                    {{"content-type", "application/json"}, {"x-github-event", "push"}}));
  ASSERT_EQ(host_.calls.size(), 1u);
  const CallRequest& request = host_.calls[0].request;
  EXPECT_EQ(request.method, "moveTask");
  EXPECT_EQ(request.session_id, "webhook");
  EXPECT_EQ(request.args.at("taskId"), 1);
  const json::object& details = request.args.at("_webhook").as_object();
  EXPECT_EQ(details.at("method"), "moveTask");
  EXPECT_EQ(details.at("headers").at("x-github-event"), "push");
  EXPECT_EQ(details.at("query").at("source"), "gh");
  EXPECT_EQ(details.at("timestamp"), epoch_millis(clock_.system()));
  ASSERT_EQ(publisher_.messages.size(), 1u);
  EXPECT_EQ(publisher_.messages[0].first, "webhooks:kanban");
  EXPECT_EQ(publisher_.messages[0].second.at("event"), "webhook-received");

  host_.calls[0].observer->on_finish(CallOutcome::success(json::object{{"moved", true}}));
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->status, 200u);
  EXPECT_EQ(body_of(*last_), json::parse(R"({"success":true,"data":{"moved":true}})"));
}

TEST_F(WebhooksTest, OutcomesMapToStatusCodes) {
  const std::pair<CallStatus, unsigned> cases[] = {{CallStatus::kFailed, 500},
                                                   {CallStatus::kTimedOut, 500},
                                                   {CallStatus::kBusy, 429},
                                                   {CallStatus::kCancelled, 503}};
  for (const auto& [status, code] : cases) {
    send("POST", "/webhook/ping");
    host_.calls.back().observer->on_finish(CallOutcome::failure(status, "why"));
    ASSERT_TRUE(last_);
    EXPECT_EQ(last_->status, code);
    EXPECT_EQ(body_of(*last_), json::parse(R"({"error":"why"})"));
  }
}

TEST_F(WebhooksTest, RoutingAndVerbs) {
  EXPECT_EQ(send("POST", "/hooks/moveTask")->status, 404u);
  EXPECT_EQ(send("POST", "/webhook/")->status, 404u);
  EXPECT_EQ(send("POST", "/webhook/a/b")->status, 404u);
  EXPECT_FALSE(send("POST", "http://127.0.0.1:3457/webhook/moveTask")) << "the absolute form";
  EXPECT_EQ(send("POST", "*")->status, 400u);
  auto unknown = send("POST", "/webhook/nope");
  EXPECT_EQ(unknown->status, 404u);
  EXPECT_EQ(body_of(*unknown).at("error"), "unknown method \"nope\"");
  auto get = send("GET", "/webhook/moveTask");
  EXPECT_EQ(get->status, 405u);
  EXPECT_EQ(header(*get, "Allow"), "POST, OPTIONS");
  EXPECT_EQ(host_.calls.size(), 1u) << "only the absolute-form request reached a method";
}

TEST_F(WebhooksTest, BadBodiesAre400) {
  auto invalid = send("POST", "/webhook/moveTask", "{not json");
  EXPECT_EQ(invalid->status, 400u);
  EXPECT_EQ(body_of(*invalid).at("error").as_string().rfind("invalid JSON", 0), 0u);
  auto array = send("POST", "/webhook/moveTask", "[1,2]");
  EXPECT_EQ(body_of(*array).at("error"), "the body must be a JSON object");
  std::string deep(100, '[');
  EXPECT_EQ(send("POST", "/webhook/moveTask", deep)->status, 400u);
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_FALSE(send("POST", "/webhook/moveTask", "")) << "an empty body is {}";
}

TEST_F(WebhooksTest, FormBodies) {
  send("POST", "/webhook/moveTask", "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D",
       {{"content-type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_EQ(host_.calls[0].request.args.at("ref"), "refs/heads/main") << "GitHub's payload=<json>";
  send("POST", "/webhook/moveTask", "taskId=1&column=In+Progress",
       {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}});
  ASSERT_EQ(host_.calls.size(), 2u);
  EXPECT_EQ(host_.calls[1].request.args.at("column"), "In Progress");
  EXPECT_EQ(send("POST", "/webhook/moveTask", "payload=%5B1%5D",
                 {{"content-type", "application/x-www-form-urlencoded"}})
                ->status,
            400u);
  send("POST", "/webhook/moveTask", R"({"taskId":3})",
       {{"content-type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(host_.calls.size(), 3u);
  EXPECT_EQ(host_.calls[2].request.args.at("taskId"), 3) << "curl -d labels JSON as a form";
}

TEST_F(WebhooksTest, CorsAllowsLocalOriginsOnly) {
  auto preflight = send("OPTIONS", "/webhook/moveTask", "", {{"origin", "http://localhost:5173"}});
  EXPECT_EQ(preflight->status, 204u);
  EXPECT_EQ(header(*preflight, "Access-Control-Allow-Origin"), "http://localhost:5173");
  EXPECT_TRUE(header(*preflight, "Access-Control-Allow-Methods"));
  auto evil = send("POST", "/webhook/moveTask", "{}", {{"origin", "https://evil.example"}});
  EXPECT_EQ(evil->status, 403u);
  EXPECT_EQ(
      send("OPTIONS", "/webhook/moveTask", "", {{"origin", "http://localhost.evil.example:80"}})
          ->status,
      403u);
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_FALSE(send("POST", "/webhook/moveTask", "{}", {{"origin", "http://127.0.0.1:8080"}}));
  host_.calls[0].observer->on_finish(CallOutcome::success(nullptr));
  EXPECT_EQ(header(*last_, "Access-Control-Allow-Origin"), "http://127.0.0.1:8080");
}

TEST_F(WebhooksTest, TheSharedSecretIsRequiredWhenSet) {
  make({.scheme = WebhookScheme::kSecret, .secrets = {{WebhookScheme::kSecret, "s3cret"}}});
  EXPECT_EQ(send("POST", "/webhook/moveTask")->status, 401u);
  EXPECT_EQ(send("POST", "/webhook/moveTask", "{}", {{"x-webhook-secret", "s3creT"}})->status,
            401u);
  EXPECT_FALSE(send("POST", "/webhook/moveTask", "{}", {{"x-webhook-secret", "s3cret"}}));
  ASSERT_EQ(host_.calls.size(), 1u);
  EXPECT_FALSE(host_.calls[0]
                   .request.args.at("_webhook")
                   .at("headers")
                   .as_object()
                   .contains("x-webhook-secret"))
      << "the secret never reaches the method";
}

TEST_F(WebhooksTest, GithubSignaturesAndPerMethodSchemes) {
  host_ = FakeHost({{"push", "", {}, false, "github"}, {"open", "", {}}});
  make({.secrets = {{WebhookScheme::kGitHub, "It's a Secret to Everybody"}}});
  const std::string body = R"({"ref":"main"})";
  auto headers =
      sign_webhook(WebhookScheme::kGitHub, "It's a Secret to Everybody", body, clock_.system(), "");
  std::vector<std::pair<std::string, std::string>> lower;
  for (auto& [name, value] : headers) {
    std::string key = name;
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lower.emplace_back(key, value);
  }
  EXPECT_FALSE(send("POST", "/webhook/push", body, lower));
  auto tampered = send("POST", "/webhook/push", R"({"ref":"evil"})", lower);
  EXPECT_EQ(tampered->status, 401u);
  EXPECT_FALSE(send("POST", "/webhook/open", body))
      << "the default scheme (none) for other methods";
  EXPECT_EQ(host_.calls.size(), 2u);
}

TEST_F(WebhooksTest, StandardWebhooksRefuseReplays) {
  const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  make({.scheme = WebhookScheme::kStandard, .secrets = {{WebhookScheme::kStandard, secret}}});
  auto signed_headers =
      sign_webhook(WebhookScheme::kStandard, secret, "{}", clock_.system(), "msg_1");
  for (auto& [name, value] : signed_headers) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  EXPECT_FALSE(send("POST", "/webhook/moveTask", "{}", signed_headers));
  auto replay = send("POST", "/webhook/moveTask", "{}", signed_headers);
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 401u);
  EXPECT_NE(replay->body.find("already delivered"), std::string::npos);
}

TEST_F(WebhooksTest, PhotonMarksAndTheAllowListRestrictMethods) {
  host_ = FakeHost({{"push", "", {}, true, ""}, {"internal", "", {}}});
  make({});
  EXPECT_FALSE(send("POST", "/webhook/push"));
  EXPECT_EQ(send("POST", "/webhook/internal")->status, 404u);
  host_ = FakeHost({{"a", "", {}}, {"b", "", {}}});
  make({.allowed_methods = {"a"}});
  EXPECT_FALSE(send("POST", "/webhook/a"));
  EXPECT_EQ(send("POST", "/webhook/b")->status, 404u);
}

TEST_F(WebhooksTest, AsyncModeAnswers202AndPublishesTheOutcome) {
  auto accepted = send("POST", "/webhook/moveTask", "{}", {{"prefer", "respond-async"}});
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 202u);
  const json::value run_id = body_of(*accepted).at("runId");
  host_.calls[0].observer->on_finish(CallOutcome::success(7));
  const json::value& completed = publisher_.messages.back().second;
  EXPECT_EQ(completed.at("event"), "webhook-completed");
  EXPECT_EQ(completed.at("data").at("runId"), run_id);
  EXPECT_EQ(completed.at("data").at("data"), 7);

  EXPECT_EQ(send("POST", "/webhook/moveTask?async=1")->status, 202u);
  host_.calls[1].observer->on_finish(CallOutcome::failure(CallStatus::kFailed, "boom"));
  EXPECT_EQ(publisher_.messages.back().second.at("event"), "webhook-failed");
  EXPECT_EQ(publisher_.messages.back().second.at("data").at("error"), "boom");
}

TEST_F(WebhooksTest, LimitsAndShutdown) {
  make({.max_running = 1});
  EXPECT_FALSE(send("POST", "/webhook/moveTask"));
  EXPECT_EQ(send("POST", "/webhook/moveTask")->status, 429u);
  host_.calls[0].observer->on_finish(CallOutcome::success(nullptr));
  service_->stop_accepting();
  EXPECT_EQ(send("POST", "/webhook/moveTask")->status, 503u);
}

TEST_F(WebhooksTest, AChannelEmitIsPublished) {
  send("POST", "/webhook/moveTask");
  host_.calls[0].observer->on_emit({{"channel", "board:main"}, {"event", "task-moved"}});
  EXPECT_EQ(publisher_.messages.back().first, "board:main");
  bool declined = false;
  host_.calls[0].observer->on_prompt({{"type", "text"}}, [&](auto value) { declined = !value; });
  EXPECT_TRUE(declined);
}

}  // namespace
}  // namespace photon::core
