// photonctl pub NAME CHANNEL [JSON] and sub NAME CHANNEL...: messages in from the argument or
// stdin, out as one JSON line each.
#include "cli/channel_command.hpp"

#include "cli/connect.hpp"
#include "cli/print.hpp"
#include "common/exit_codes.hpp"
#include "photon/client.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace photon::cli {
namespace {

boost::json::value parse_message(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) throw UsageError("message is not valid JSON: " + ec.message());
  return value;
}

// The message argument, or one message per non-blank line of stdin (published as each arrives,
// so `tail -f log | photonctl pub --raw NAME CHANNEL` streams). With `raw`, the text is sent as a
// JSON string; otherwise it must be JSON. A line that is not stops the run (exit 2) after the
// lines before it were published.
int cmd_pub(const Globals& globals, const std::string& name, const std::string& channel,
            const std::optional<std::string>& json, bool raw) {
  check_name(name);
  auto message_of = [raw](const std::string& text) {
    return raw ? boost::json::value(boost::json::string(text)) : parse_message(text);
  };
  if (json) {
    boost::json::value message = message_of(*json);
    const std::size_t delivered = connect(name).publish(channel, message);
    if (globals.json)
      print_json({{"published", true}, {"channel", channel}, {"delivered", delivered}});
    else
      std::cout << "published to " << delivered
                << (delivered == 1 ? " subscriber\n" : " subscribers\n");
    return kExitOk;
  }
  std::optional<photon::Client> client;
  std::size_t messages = 0;
  std::size_t delivered = 0;
  std::size_t line_number = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    boost::json::value message;
    try {
      message = message_of(line);
    } catch (const UsageError& error) {
      throw UsageError("stdin line " + std::to_string(line_number) + ": " + error.what() + " (" +
                       std::to_string(messages) + " published before it; --raw sends text as is)");
    }
    if (!client) client.emplace(connect(name));
    delivered += client->publish(channel, message);
    ++messages;
  }
  if (messages == 0) throw UsageError("no message: give one as an argument, or lines on stdin");
  if (globals.json) {
    print_json({{"published", true},
                {"channel", channel},
                {"messages", messages},
                {"delivered", delivered}});
  } else if (messages == 1) {
    std::cout << "published to " << delivered
              << (delivered == 1 ? " subscriber\n" : " subscribers\n");
  } else {
    std::cout << "published " << messages << " messages, " << delivered
              << (delivered == 1 ? " delivery\n" : " deliveries\n");
  }
  return kExitOk;
}

// With `reconnect`, a lost connection is made again and every channel resumed from the last
// message received (ReconnectOptions), so each message is printed once; stderr says when the
// connection is lost, when it is back, and when a channel may have missed messages.
int cmd_sub(const std::string& name, const std::vector<std::string>& channels,
            std::optional<std::size_t> count, const std::optional<std::string>& timeout_text,
            bool reconnect) {
  ClientOptions options;
  if (reconnect) {
    options.reconnect.enabled = true;
    options.reconnect.on_disconnect = [&name](const ClientError& cause) {
      std::cerr << "photonctl: lost the connection to " << name << " (" << cause.what()
                << "); reconnecting\n";
    };
    options.reconnect.on_reconnect = [&name] {
      std::cerr << "photonctl: reconnected to " << name << "; subscriptions resumed\n";
    };
    options.reconnect.on_refresh_needed = [](const std::string& channel) {
      std::cerr << "photonctl: refresh needed on " << channel
                << ": messages published while disconnected may be missing (the daemon "
                   "restarted or no longer keeps them)\n";
    };
  }
  photon::Client client = connect(name, std::move(options));
  for (const auto& channel : channels) client.subscribe(channel);
  using Clock = std::chrono::steady_clock;
  const auto timeout =
      timeout_text ? duration_flag(*timeout_text, "--timeout") : std::chrono::milliseconds::max();
  const auto deadline = timeout == std::chrono::milliseconds::max() ? Clock::time_point::max()
                                                                    : Clock::now() + timeout;
  std::size_t received = 0;
  while (!count || received < *count) {
    const auto left =
        deadline == Clock::time_point::max()
            ? std::chrono::milliseconds(std::chrono::hours(24))
            : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto message = client.next(left);
    if (!message) continue;
    std::cout << boost::json::serialize(boost::json::object{{"id", message->id},
                                                            {"channel", message->channel},
                                                            {"message", message->message}})
              << std::endl;
    ++received;
  }
  if (count && received < *count) {
    std::cerr << "photonctl: timed out after " << received << " of " << *count << " messages\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void add_pub_command(CommandLine& cli) {
  struct Options {
    std::string channel;
    std::optional<std::string> message;
    bool raw = false;
  };
  auto options = std::make_shared<Options>();
  auto* pub = cli.add(
      "pub", "Publish a JSON message on CHANNEL (the argument, or one per line of stdin)",
      [&cli, options] {
        return cmd_pub(cli.globals(), cli.name(), options->channel, options->message, options->raw);
      });
  pub->add_option("name", cli.name(), "Photon name")->required();
  pub->add_option("channel", options->channel, "Channel name")->required();
  pub->add_option("json", options->message,
                  "Message as JSON; without it, each line of stdin is a message");
  pub->add_flag("--raw", options->raw, "Send the text as a JSON string (any text, no JSON needed)");
  pub->footer(
      "Without JSON, each non-blank line of stdin is published as it arrives, on one connection\n"
      "(`tail -f app.log | photonctl pub --raw NAME logs`). A line that is not JSON (without\n"
      "--raw) stops the run with exit 2; the lines before it were published.\n"
      "Exit status: 0 ok, 1 refused, 2 usage or a message that is not JSON, 3 daemon not running.");
}

void add_sub_command(CommandLine& cli) {
  struct Options {
    std::vector<std::string> channels;
    std::optional<std::size_t> count;
    std::optional<std::string> timeout;
    bool reconnect = false;
  };
  auto options = std::make_shared<Options>();
  auto* sub = cli.add("sub", "Print each message on CHANNEL... as one JSON line", [&cli, options] {
    return cmd_sub(cli.name(), options->channels, options->count, options->timeout,
                   options->reconnect);
  });
  sub->add_option("name", cli.name(), "Photon name")->required();
  sub->add_option("channels", options->channels, "Channels; a trailing * matches a prefix")
      ->required();
  sub->add_option("--count", options->count,
                  "Exit after this many messages (exit 1 if --timeout comes first)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--timeout", options->timeout, "Stop after this long (e.g. 5s)");
  sub->add_flag("--reconnect", options->reconnect,
                "Stay up when the connection drops (the daemon restarts): reconnect with backoff "
                "and resume each channel where it stopped, printing every message once");
  sub->footer(
      "With --reconnect, stderr says when the connection is lost and when it is back (once per\n"
      "outage), and \"refresh needed on CHANNEL\" when messages may have been missed: the daemon\n"
      "restarted, or kept fewer than were published while away (--replay-messages). The daemon\n"
      "must be running when photonctl starts.");
}

}  // namespace photon::cli
