// libphoton's client API: a synchronous connection to a photon's daemon for pings, pub/sub, locks,
// method calls and status. One Client is one Unix-socket connection; it is not thread-safe (use
// one per thread).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
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

// How to acquire a lock (the `lock` request's lockTimeout, lockWait and releaseOnDisconnect).
struct LockOptions {
  // The lease: the lock ends this long after it was acquired or last extended (1 ms to 7 days).
  std::chrono::milliseconds ttl{30'000};
  // When another session holds the lock, wait up to this long for it (0 to 24 h; 0: no wait).
  std::chrono::milliseconds wait{0};
  // The lock also ends when this connection closes (the Client is destroyed, the process dies).
  bool release_on_disconnect = false;
};

// The outcome of acquire_lock. A refusal (another session holds the lock) is a value, not an error.
struct LockResult {
  bool acquired = false;
  std::string name;
  // Acquired: this client's session. Refused: the session that holds the lock now.
  std::string holder;
  // Acquired: the fencing token, unchanged by extensions (docs/locks.md). Refused: 0.
  std::uint64_t token = 0;
  // Acquired: when the holder first acquired it (unchanged by extensions). Refused: the epoch.
  std::chrono::system_clock::time_point acquired_at{};
  // When the lease ends: ours when acquired, the holder's when refused (wall clock, ms precision).
  std::chrono::system_clock::time_point expires_at{};
  // Acquired by the session that held it already: lease renewed, token and acquired_at kept.
  bool extended = false;
  // Refused: why ("lock \"x\" is held by cli-1-ab", after a wait "timed out after N ms: ...").
  std::string reason;

  explicit operator bool() const { return acquired; }
};

// The outcome of release_lock: released (also when nobody held the lock), or not because another
// session holds it.
struct LockRelease {
  bool released = false;
  std::string reason;  // when not released: "lock \"x\" is held by cli-1-ab"

  explicit operator bool() const { return released; }
};

// A held lock, as list_locks and query_lock report it.
struct LockInfo {
  std::string name;
  std::string holder;
  std::chrono::system_clock::time_point acquired_at{};
  std::chrono::system_clock::time_point expires_at{};
  std::uint64_t token = 0;
  std::size_t waiters = 0;  // lock requests queued for it
};

struct ClientOptions {
  // How long a request waits for its reply.
  std::chrono::milliseconds timeout{10'000};
  // Sent as `sessionId`; empty means default_session_id().
  std::string session_id;
};

// One choice of a select prompt. A plain string option has value == label.
struct PromptOption {
  std::string value;  // what to answer; an option whose value is not a string: its JSON text
  std::string label;  // what to show; the value when the option has no label
};

// A question a running method asks its caller (the `prompt` message's `prompt` object).
struct PromptRequest {
  // "text", "password", "confirm" or "select"; treat any other as text.
  std::string type;
  std::string message;                // the question
  boost::json::value default_value;   // the suggested answer; null when the prompt has none
  std::vector<PromptOption> options;  // select: the choices, in order
  boost::json::object raw;            // the whole prompt object, for fields not read above
};

// Answers a prompt: the value to send (a string, a boolean, any JSON), or nothing to decline it
// (the method sees null). Runs on the thread inside Client::call.
using PromptHandler = std::function<std::optional<boost::json::value>(const PromptRequest&)>;

// Receives a method's progress events (`emit` messages' `emitData`), in the order sent. Runs on
// the thread inside Client::call.
using EmitHandler = std::function<void(const boost::json::object&)>;

// How Client::call runs a method.
struct CallOptions {
  // Answers prompts; when empty, every prompt is declined (answered with null).
  PromptHandler on_prompt;
  // Receives progress events; when empty, they are dropped.
  EmitHandler on_emit;
  // How long to wait for the result; 0: as long as the method runs. Time spent inside the
  // handlers (a person typing an answer) does not count.
  std::chrono::milliseconds timeout{0};
  // Sent as `clientType` ("cli", "mcp", "beam"...) when not empty; the method may read it.
  std::string client_type;
};

// One parameter of a method, as the photon documents it (the daemon does not enforce it).
struct ParamDescription {
  std::string name;
  std::string type;  // "string", "number", "boolean", "object", "array" or "any"
  std::string description;
  bool required = true;
};

// One method of the photon, as list_methods reports it.
struct MethodDescription {
  std::string name;
  std::string description;
  std::vector<ParamDescription> params;
};

// $PHOTON_SESSION_ID when set, else "cli-<pid>-<8 hex digits>" (fixed for the process).
std::string default_session_id();

// The socket of photon `name` ($PHOTON_DIR/daemons/NAME.sock). Throws std::invalid_argument when
// `name` is not a valid photon name.
std::filesystem::path socket_path_for(std::string_view photon_name);

using MessageHandler = std::function<void(const ChannelMessage&)>;

class Client {
 public:
  // Connects to the daemon of photon `name`, or to the socket at `socket`. The socket's directory
  // must be owned by this process's effective uid or by root and be writable by no one else, the
  // socket must be owned by one of them, and so must the process listening on it; otherwise
  // nothing is sent and ClientError(kConnection) says which rule failed ("refusing to connect:
  // ..."). The socket is reached through the checked directory's descriptor
  // (/proc/self/fd/N/NAME.sock), so its path is not resolved again after the check.
  // Throws ClientError(kNotRunning) when nothing listens there, std::invalid_argument for a bad
  // name.
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

  // Locks. The holder is this client's session (session_id()): every Client of the session is the
  // same holder, so locking again extends the lease (re-entrant) and any of them can release it.
  // For a lease renewed in the background and released at scope exit, see photon::LockGuard.

  // Acquires lock `name`, or extends the lease when this session holds it already. With
  // options.wait, a lock held by another session is waited for (first come, first served), and
  // the reply timeout is the client's timeout plus the wait. Returns acquired (with the fencing
  // token) or refused (with the holder and the reason).
  // Throws ClientError: kRefused when the daemon rejects the request itself (invalid name or
  // ttl, lock limit reached); kTimeout when no reply came: the outcome is then unknown and the
  // lock may still be granted to this session, so release it or let its lease run out;
  // kConnection, kProtocol.
  LockResult acquire_lock(std::string_view name, const LockOptions& options = {});

  // Renews the lease of lock `name` that this session holds under fencing token `token`
  // (`renewToken`): extended (same token) for options.ttl from now, or refused when the lease has
  // ended, whoever holds the lock now; a renewal never takes a free lock and never waits
  // (options.wait is ignored). With options.release_on_disconnect the lock is also bound to this
  // connection. Throws ClientError as acquire_lock does, and kProtocol when the daemon predates
  // renewToken (it took the lock anew; that lock is released again).
  LockResult renew_lock(std::string_view name, std::uint64_t token,
                        const LockOptions& options = {});

  // Releases lock `name` if this session holds it. Released, also when nobody held it; not
  // released when another session holds it (reason names it). Throws ClientError.
  LockRelease release_lock(std::string_view name);

  // Every held lock, sorted by name. Throws ClientError.
  std::vector<LockInfo> list_locks();

  // Lock `name`'s holder and lease, or nothing when nobody holds it. Throws ClientError.
  std::optional<LockInfo> query_lock(std::string_view name);

  // Methods. A call runs in the photon instance of this client's session (session_id()); every
  // Client of a session shares that instance's state.

  // Calls `method` with `args` (the `command` request) and returns its result (null when the
  // method returned nothing). While it runs, progress events go to options.on_emit and prompts
  // to options.on_prompt, whose answer is sent back at once; channel messages that arrive
  // meanwhile are kept for next() and poll(). The handlers run on the calling thread, inside
  // call(); they may use other Clients, never this one.
  // Throws ClientError: kRefused with the daemon's message when the method failed or the call was
  // refused (unknown method: the message lists the available ones; a method timeout says "timed
  // out"); kTimeout when options.timeout passed without a result: the method may still be running
  // and may still have effects, its late messages are skipped; kConnection when the daemon went
  // away (the method's outcome is then unknown); kProtocol.
  // An exception thrown by a handler propagates out of call() (a prompt is declined first, so the
  // method is not left waiting); the method runs on and its result is skipped, as after a timeout.
  // After any of these the Client stays usable, except after kConnection and kProtocol.
  // Prompts that arrive after their call was abandoned are declined when read.
  boost::json::value call(std::string_view method, const boost::json::object& args = {},
                          CallOptions options = {});

  // The photon's methods, in the order it declares them (the `list_methods` request); empty for a
  // daemon without methods. Throws ClientError.
  std::vector<MethodDescription> list_methods();

  // Sends any request object (its "id" and "sessionId" are filled in) and returns the reply's
  // `data` (or, for replies without data, the whole reply). Throws ClientError(kRefused) with
  // the daemon's message for error replies and results with success: false. A `command` sent
  // this way has its emits dropped and its prompts declined; call() handles them.
  boost::json::value request(boost::json::object request);

  const std::string& session_id() const { return session_id_; }

  // How long each request waits for its reply: ClientOptions::timeout until changed here.
  std::chrono::milliseconds timeout() const { return options_.timeout; }
  void set_timeout(std::chrono::milliseconds timeout) { options_.timeout = timeout; }

 private:
  Client(int fd, ClientOptions options);
  // Reads one line, waiting at most until `deadline`; nothing on timeout.
  std::optional<std::string> read_line(std::chrono::steady_clock::time_point deadline);
  void write_line(const std::string& line);
  // Sends `request` (with a fresh id and the session) and returns the reply to it, waiting at
  // most `timeout`. Error replies throw ClientError(kRefused); success: false is returned as is.
  boost::json::object exchange(boost::json::object request, std::chrono::milliseconds timeout);
  // Sends `request` with a fresh id (returned) and the session.
  std::string send_request(boost::json::object request);
  // Reads until the reply to request `id`, or until `deadline` (kTimeout). Lines with that id
  // whose type is "emit" or "prompt" go to `interim`, which may move the deadline later; without
  // one, emits are dropped and prompts declined. Throws like exchange().
  using InterimHandler =
      std::function<void(boost::json::object&, std::chrono::steady_clock::time_point&)>;
  boost::json::object await_reply(const std::string& id,
                                  std::chrono::steady_clock::time_point deadline,
                                  const InterimHandler& interim = {});
  // Answers the prompt of call `id` (promptValue; nothing sends null). No reply comes.
  void answer_prompt(const std::string& id, const std::optional<boost::json::value>& value);
  // Declines `line` when it is a prompt: its call was abandoned, nobody else can answer it.
  void decline_stray_prompt(const boost::json::object& line);
  // Runs the handlers of queued messages that have one; returns the first message without one,
  // taken off the queue, or nothing once the queue is empty. Counts handler calls in `handled`.
  std::optional<ChannelMessage> dispatch_queued(std::size_t& handled);
  // Reads one line outside any request (a channel message) and queues it; false on timeout.
  bool read_pushed_line(std::chrono::steady_clock::time_point deadline);
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
