// libphoton's client API: a synchronous connection to a photon's daemon for pings, pub/sub, locks,
// method calls and status. One Client is one Unix-socket connection at a time (a new one after a
// reconnect, when asked for); it is not thread-safe (use one per thread).
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
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace photon {

// One message pushed by the daemon to a subscriber. (event_id and replay came after 0.1.0, at
// the end so that aggregate initialization in order still compiles; they changed the ABI.)
struct ChannelMessage {
  std::string id;       // unique within the daemon's life ("ch_42")
  std::string channel;  // the channel it was published on (not the pattern that matched)
  boost::json::value message;
  // The message's `eventId`: unique, and the position a subscription resumes from after a
  // reconnect. Opaque: compare it for equality only. Empty when the daemon sent none (older than
  // resuming).
  std::string event_id;
  // Sent again because this client missed it while its connection was down (`"replay":true`):
  // published before the messages that arrived live around it, and never delivered before.
  bool replay = false;
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

// Told that subscription `channel` (a channel or a pattern, as subscribed) may have missed
// messages while the connection was down: the daemon restarted, its replay window no longer held
// them, or nothing had arrived on the connection since the subscription was made, so there was no
// position to resume from. Reload what the messages describe from its source; live messages
// follow. Runs on the thread inside the Client call that reached it (next() or poll()).
using RefreshHandler = std::function<void(const std::string& channel)>;

// Reconnecting on its own after the connection drops (docs/channels.md, "Resuming after a
// disconnect"). Off unless `enabled`.
//
// When the daemon closes the connection, or the socket fails, the Client connects again to the
// same socket, with the same checks as connect(): at once, then after a delay that doubles from
// initial_backoff up to max_backoff, each one jittered down to half of itself at random, so
// that many clients do not come back in step. Once connected it subscribes again to every
// subscription, each with `lastEventId`, and delivers every message it missed exactly once:
// in publish order within each subscription, each marked replay, before the live ones. (Across
// unrelated subscriptions, a later one's replays may come after an earlier one's live messages.)
// Where the daemon cannot replay (refresh_needed), on_refresh_needed is called instead, in the
// stream's order.
//
// Where the drop is noticed decides what the caller sees:
// - next() and poll() reconnect and carry on within their timeout; while the daemon is away they
//   return nothing (or 0) when the timeout passes, and the next call tries on. (Once connected,
//   each request that resumes a subscription waits up to the client's timeout for its reply,
//   whatever is left of theirs: a resume is not left half done.)
// - A request waiting for its reply (publish, a lock, call...) throws ClientError(kConnection):
//   it may or may not have taken effect, and it is never sent again, since most requests are not
//   idempotent (a publish would be delivered twice). A lock granted to the session stays the
//   session's (unless release_on_disconnect); a method call runs on without its caller.
// - A request made while disconnected first reconnects, waiting at most the client's timeout;
//   then it throws ClientError (kNotRunning or kConnection, the last attempt's reason).
// A connection lost again before its replays are all in counts as a failed attempt (backoff);
// after three in a row, the subscriptions are resumed without a replay and told refresh_needed
// (a replay larger than the daemon's --output-hard-limit gets the connection cut every time).
// The Client stays usable after each of these. The first connect() is not retried: it throws as
// without this option. A subscription the daemon refuses to take back (a subscription limit
// lowered across a restart) is dropped, and the call that reconnected throws ClientError(kRefused)
// naming it, after on_reconnect.
//
// Thread rule, as for the rest of Client: the callbacks run on the calling thread, inside the
// Client call that noticed the drop, reconnected, or reached the refresh news; they may use other
// Clients, never this one. An exception thrown by one propagates out of that call.
struct ReconnectOptions {
  bool enabled = false;
  // The delay before the second attempt; each failed attempt doubles it. More than 0.
  std::chrono::milliseconds initial_backoff{100};
  // The longest delay between two attempts. From initial_backoff to 24 h.
  std::chrono::milliseconds max_backoff{5'000};
  // Required when enabled (connect() throws std::invalid_argument without it): a gap must be told.
  RefreshHandler on_refresh_needed;
  // Called once per outage, when the connection is found lost, with why; may be empty.
  std::function<void(const ClientError& cause)> on_disconnect;
  // Called once per outage, when connected again and every subscription is resumed; may be empty.
  std::function<void()> on_reconnect;
};

struct ClientOptions {
  // How long a request waits for its reply.
  std::chrono::milliseconds timeout{10'000};
  // Sent as `sessionId`; empty means default_session_id().
  std::string session_id;
  // Reconnecting after a drop and resuming the subscriptions; off by default.
  ReconnectOptions reconnect;
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
  // name or bad options.reconnect (enabled without on_refresh_needed, a backoff out of range).
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
  // arrive through next(), or, when a handler is given, through poll() calling it. Subscribing
  // again to the same channel keeps one subscription; a handler given then replaces its handler.
  void subscribe(std::string_view channel, MessageHandler handler = {});
  // Ends the subscription named exactly as subscribed. While disconnected (with reconnect), it is
  // only forgotten: the daemon ended it with the connection.
  void unsubscribe(std::string_view channel);

  // The next channel message without a handler, waiting at most `timeout`; nothing on timeout.
  // Messages already received while waiting for replies are returned first. With reconnect, a
  // lost connection is reconnected within `timeout` (see ReconnectOptions), and refresh_needed
  // news is handed to on_refresh_needed on the way.
  std::optional<ChannelMessage> next(std::chrono::milliseconds timeout);

  // Waits up to `timeout` for messages and calls the handler of each one's subscription; messages
  // of subscriptions without a handler are kept for next(). Returns the number of handlers called.
  // Reconnects as next() does.
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
  // After any of these the Client stays usable, except after kConnection (unless it reconnects:
  // ReconnectOptions) and kProtocol.
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
  // One subscription of this client, as the daemon was asked for it.
  struct Subscription {
    std::string channel;     // a channel or a pattern
    MessageHandler handler;  // empty: its messages go to next()
    // When it was made, on the client's own count (see resume_point_made_): a resume point
    // covers the subscriptions made before it.
    std::uint64_t made = 0;
  };
  // What the daemon pushed outside any reply, in arrival order: a channel message, or, with
  // refresh_needed, the news that subscription message.channel could not be resumed.
  struct Pushed {
    ChannelMessage message;
    bool refresh_needed = false;
  };

  Client(int fd, std::filesystem::path socket, ClientOptions options);
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
  // Queues a channel_message or refresh_needed line; false when `line` is neither. A message
  // already received since the resume point (a replay overlapping another) is dropped.
  bool take_pushed_line(const boost::json::object& line);
  // Notes a received message's event id; false when it was received before (drop it).
  bool note_received(const std::string& event_id, bool replay);
  // Makes `event_id` the resume point of every subscription made so far.
  void move_resume_point(const std::string& event_id);
  const MessageHandler* handler_for(std::string_view channel) const;

  // Reconnection (ClientOptions::reconnect). The connection is gone when fd_ < 0.
  // Closes the connection and, with reconnect, starts an outage (on_disconnect); throws `cause`.
  [[noreturn]] void lose_connection(const ClientError& cause);
  // Connects again when disconnected, trying until `deadline`; false when the deadline came
  // first. Throws what resuming throws (ClientError(kRefused) for a subscription not taken back).
  bool reconnect_if_needed(std::chrono::steady_clock::time_point deadline);
  // Subscribes again to every subscription on the new connection (lastEventId: the resume
  // point); returns the sentences of the daemon's refusals, whose subscriptions are dropped.
  std::vector<std::string> resume_subscriptions();
  // Like reconnect_if_needed, with the client's timeout; throws when still disconnected.
  void ensure_connected();

  int fd_ = -1;
  std::filesystem::path socket_;
  ClientOptions options_;
  std::string session_id_;
  std::string input_;
  std::deque<Pushed> unclaimed_;
  std::vector<Subscription> subscriptions_;
  std::uint64_t next_request_ = 1;

  // Resuming. Invariant while in_order_: the connection has delivered every message of every
  // subscription made before resume_point_made_ up to resume_point_, and none after it, because a
  // connection receives its live messages in publish order. After a reconnect, replays break
  // that order until the first live message after every subscription was resumed; until then
  // the resume point stays, and the ids received since it are kept to drop a second copy (a
  // replay of a message that an overlapping subscription delivered already).
  std::string resume_point_;  // an event id; empty: nothing to resume from
  std::uint64_t resume_point_made_ = 0;
  std::uint64_t made_count_ = 0;  // counts subscriptions made and resume point moves
  bool in_order_ = true;
  bool resuming_ = false;  // subscriptions are being made again on a new connection
  std::unordered_set<std::string> received_since_resume_point_;
  bool in_outage_ = false;               // lost, and not yet resumed: on_disconnect was called
  unsigned failed_attempts_ = 0;         // attempts (and connections lost catching up) in a row
  unsigned cuts_while_catching_up_ = 0;  // connections lost before their replays were all in
  std::chrono::steady_clock::time_point connected_at_{};
  std::chrono::steady_clock::time_point next_attempt_{};
  std::string last_failure_;  // why the last attempt failed
  ClientError::Kind last_failure_kind_ = ClientError::Kind::kConnection;
  std::minstd_rand jitter_;
};

}  // namespace photon
