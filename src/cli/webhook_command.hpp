// photonctl webhook / webhook-send: show a daemon's webhook endpoint, and send it a signed test
// request over real HTTP (the way GitHub, Stripe or a Standard Webhooks sender would).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace photon::cli {

// The `webhook` and `webhook-send` subcommands. Construct it beside the other subcommands (it
// registers both on `app` and must outlive the parse); after parsing,
// `if (webhooks) return webhooks.run(json);`.
//
// Both ask the daemon's `status` for its endpoint (`data.webhook`). webhook-send signs with the
// secret the daemon reads from the same variables: $PHOTON_WEBHOOK_SECRET_<SCHEME>, else
// $PHOTON_WEBHOOK_SECRET.
class WebhookCommands {
 public:
  explicit WebhookCommands(CLI::App& app);
  WebhookCommands(const WebhookCommands&) = delete;
  WebhookCommands& operator=(const WebhookCommands&) = delete;

  // True when the command line chose `webhook` or `webhook-send`.
  explicit operator bool() const { return static_cast<bool>(*show_) || static_cast<bool>(*send_); }

  // Runs the chosen command; messages go to stderr. Returns the exit status: 0 ok (webhook-send:
  // a 2xx response), 1 no webhook endpoint, a non-2xx response or an HTTP failure, 2 usage (also
  // a missing secret), 3 daemon not running.
  int run(bool json) const;

 private:
  int show(bool json) const;
  int send(bool json) const;

  CLI::App* show_;
  CLI::App* send_;
  std::string name_;
  std::string method_;
  std::optional<std::string> data_;
  std::vector<std::string> pairs_;
  std::optional<std::string> scheme_;
  bool async_ = false;
  std::optional<std::string> timeout_;
};

}  // namespace photon::cli
