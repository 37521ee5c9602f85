// Fuzzes the webhook request handler: the input is one HTTP request in text form (a request line,
// header lines, an empty line, the body), handed to WebhookService with a fake method host. Every
// request must get exactly one response with a known status and a JSON body (or none for 204).
#include "fake_clock.hpp"
#include "webhooks/webhooks.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace photon::core;

class FinishingHost final : public MethodHost {
 public:
  FinishingHost()
      : methods_{{"open", "", {}},
                 {"push", "", {}, false, "github"},
                 {"pay", "", {}, false, "stripe"},
                 {"std", "", {}, false, "standard"}} {}
  const std::vector<MethodInfo>& methods() const override { return methods_; }
  void start(CallRequest request, std::shared_ptr<CallObserver> observer) override {
    // The args must be an object holding _webhook; echo them back through an emit and the result.
    if (!request.args.contains("_webhook")) std::abort();
    observer->on_emit(request.args);
    observer->on_finish(request.args.contains("fail")
                            ? CallOutcome::failure(CallStatus::kFailed, "x")
                            : CallOutcome::success(request.args.size()));
  }
  HostStats stats() const override { return {}; }
  void cancel_all(std::function<void()> done) override { done(); }

 private:
  std::vector<MethodInfo> methods_;
};

class NullPublisher final : public JobPublisher {
 public:
  void publish(const std::string&, const boost::json::value&) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  photon::testing::FakeClock clock;
  FinishingHost host;
  NullPublisher publisher;
  WebhookOptions options;
  options.photon_name = "fuzz";
  options.scheme = static_cast<WebhookScheme>(data[0] % 5);
  options.secrets = {{WebhookScheme::kSecret, "s"},
                     {WebhookScheme::kGitHub, "It's a Secret to Everybody"},
                     {WebhookScheme::kStripe, "whsec_stripe"},
                     {WebhookScheme::kStandard, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}};
  WebhookService service(options, clock, &host, publisher);

  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  WebhookRequest request;
  auto next_line = [&]() {
    const std::size_t end = input.find('\n');
    std::string_view line = input.substr(0, end);
    input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
    return line;
  };
  std::string_view first = next_line();
  const std::size_t space = first.find(' ');
  request.method = std::string(first.substr(0, space));
  request.target = space == std::string_view::npos ? "" : std::string(first.substr(space + 1));
  for (std::string_view line = next_line(); !line.empty(); line = next_line()) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    request.headers.emplace_back(std::move(name), std::string(value));
  }
  request.body = std::string(input);

  int responses = 0;
  service.handle(std::move(request), [&](WebhookResponse response) {
    ++responses;
    switch (response.status) {
      case 200:
      case 202:
      case 204:
      case 400:
      case 401:
      case 403:
      case 404:
      case 405:
      case 429:
      case 500:
      case 503:
        break;
      default:
        std::abort();
    }
    if (response.status == 204) return;
    boost::system::error_code ec;
    boost::json::value body = boost::json::parse(response.body, ec);
    if (ec || !body.is_object()) std::abort();
  });
  if (responses != 1) std::abort();
  return 0;
}
