// libphoton's client API: a synchronous connection to a photon's daemon for pings, pub/sub and
// status. One Client is one Unix-socket connection; it is not thread-safe (use one per thread).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace photon {

// One message pushed by the daemon to a subscriber.
struct ChannelMessage {
  std::string id;       // unique within the daemon's life ("ch_42")
  std::string channel;  // the channel it was published on (not the pattern that matched)
  boost::json::value message;
};

// Every failure of a Client call. kind() tells what happened; what() says it in words.
class ClientError : public std::runtime_error {
 public:
  enum class Kind {
    kNotRunning,  // no daemon answers on the socket
    kConnection,  // the connection failed or was closed mid-request
    kTimeout,     // no reply within the client's timeout
    kProtocol,    // the daemon sent something that is not a valid reply
    kRefused,     // the daemon answered with an error (or success: false)
  };
  ClientError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct ClientOptions {
  // How long a request waits for its reply.
  std::chrono::milliseconds timeout{10'000};
  // Sent as `sessionId`; empty means default_session_id().
  std::string session_id;
};

// $PHOTON_SESSION_ID when set, else "cli-<pid>-<8 hex digits>" (fixed for the process).
std::string default_session_id();

// The socket of photon `name` ($PHOTON_DIR/daemons/NAME.sock). Throws std::invalid_argument when
// `name` is not a valid photon name.
std::filesystem::path socket_path_for(std::string_view photon_name);

using MessageHandler = std::function<void(const ChannelMessage&)>;

class Client {
 public:
  // Connects to the daemon of photon `name`, or to the socket at `socket`.
  // Throws ClientError(kNotRunning) when nothing listens there, std::invalid_argument for a bad name.
  static Client connect(std::string_view photon_name, ClientOptions options = {});
  static Client connect_socket(const std::filesystem::path& socket, ClientOptions options = {});

  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Round trip to the daemon. Throws ClientError.
  void ping();

  // Publishes `message` on `channel`; returns how many other connections it was queued to.
  std::size_t publish(std::string_view channel, const boost::json::value& message);

  // Subscribes this connection to `channel` (a trailing '*' subscribes to a prefix). Messages
  // arrive through next(), or, when a handler is given, through poll() calling it.
  void subscribe(std::string_view channel, MessageHandler handler = {});
  void unsubscribe(std::string_view channel);

  // The next channel message without a handler, waiting at most `timeout`; nothing on timeout.
  // Messages already received while waiting for replies are returned first.
  std::optional<ChannelMessage> next(std::chrono::milliseconds timeout);

  // Waits up to `timeout` for messages and calls the handler of each one's subscription; messages
  // of subscriptions without a handler are kept for next(). Returns the number of handlers called.
  std::size_t poll(std::chrono::milliseconds timeout);

  // The daemon's `status` data (pid, version, uptimeMs, connections, channels, counters).
  boost::json::object status();

  // Asks the daemon to shut down; returns once it has acknowledged.
  void shutdown();

  // Sends any request object (its "id" and "sessionId" are filled in) and returns the reply's
  // `data` (or, for replies without data, the whole reply). Throws ClientError(kRefused) with
  // the daemon's message for error replies and results with success: false.
  boost::json::value request(boost::json::object request);

  const std::string& session_id() const { return session_id_; }

 private:
  Client(int fd, ClientOptions options);
  // Reads one line, waiting at most until `deadline`; nothing on timeout.
  std::optional<std::string> read_line(std::chrono::steady_clock::time_point deadline);
  void write_line(const std::string& line);
  // Queues a channel_message line; false when `reply` is not one.
  bool take_channel_message(const boost::json::object& reply);
  const MessageHandler* handler_for(std::string_view channel) const;

  int fd_ = -1;
  ClientOptions options_;
  std::string session_id_;
  std::string input_;
  std::deque<ChannelMessage> unclaimed_;
  std::vector<std::pair<std::string, MessageHandler>> handlers_;
  std::uint64_t next_request_ = 1;
};

}  // namespace photon
