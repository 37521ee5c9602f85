// The synchronous client: one blocking Unix-socket connection, replies matched by id, channel
// messages that arrive meanwhile kept in order, a method call's emits and prompts handled inline,
// and, when asked for, a new connection after a drop with every subscription resumed.
#include "photon/client.hpp"

#include "common/paths.hpp"
#include "common/private_dir.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

namespace photon {
namespace {

using Clock = std::chrono::steady_clock;
using Kind = ClientError::Kind;

// Channel messages can be large; a reply line longer than this is a protocol error.
constexpr std::size_t kMaxReplyBytes = 64u << 20;

// Connections lost this many times in a row while catching up (the replays not yet all in) give
// up the replay: the daemon queues a replay larger than its --output-hard-limit, then cuts the
// connection, each time it is asked for. Resuming without it, told by refresh_needed, goes on.
constexpr unsigned kCutsBeforeGivingUpReplay = 3;

// The longest ReconnectOptions::max_backoff: doubling the delay up to it cannot overflow.
constexpr std::chrono::milliseconds kMaxBackoffLimit = std::chrono::hours(24);

// Appended to the reason a request was cut off by a lost connection, when the client reconnects.
constexpr std::string_view kLostRequestOutcome =
    " before the reply came: the request may or may not have taken effect (the client reconnects "
    "on its next call)";

void check_reconnect_options(const ReconnectOptions& reconnect) {
  if (!reconnect.enabled) return;
  if (!reconnect.on_refresh_needed) {
    throw std::invalid_argument(
        "ClientOptions::reconnect.on_refresh_needed is required when reconnect is enabled: a "
        "subscription that cannot be resumed without a gap must be told");
  }
  if (reconnect.initial_backoff.count() <= 0) {
    throw std::invalid_argument("ClientOptions::reconnect.initial_backoff must be more than 0 ms");
  }
  if (reconnect.max_backoff < reconnect.initial_backoff ||
      reconnect.max_backoff > kMaxBackoffLimit) {
    throw std::invalid_argument(
        "ClientOptions::reconnect.max_backoff must be from initial_backoff to 24 h");
  }
}

// The delay after `failures` failed attempts in a row (1 or more): initial_backoff doubled per
// failure up to max_backoff, then a random part of its upper half, so that the clients of a
// restarted daemon spread out instead of coming back in step.
std::chrono::milliseconds backoff_delay(const ReconnectOptions& reconnect, unsigned failures,
                                        std::minstd_rand& random) {
  std::chrono::milliseconds delay = reconnect.initial_backoff;
  for (unsigned doubled = 1; doubled < failures && delay < reconnect.max_backoff; ++doubled) {
    delay *= 2;
  }
  delay = std::min(delay, reconnect.max_backoff);
  std::uniform_int_distribution<std::chrono::milliseconds::rep> pick(delay.count() / 2,
                                                                     delay.count());
  return std::chrono::milliseconds(pick(random));
}

// Patterns before exact channels, the widest pattern first. Two subscriptions overlap only when
// one covers the other (a pattern covers the longer patterns and channels it is a prefix of), so
// in this order the covering one is resumed first, and the covered one's replay brings only
// second copies, which are dropped: each subscription's messages stay in publish order.
bool resumes_before(std::string_view a, std::string_view b) {
  const bool a_pattern = !a.empty() && a.back() == '*';
  const bool b_pattern = !b.empty() && b.back() == '*';
  if (a_pattern != b_pattern) return a_pattern;
  return a_pattern && a.size() < b.size();
}

bool channel_matches(std::string_view subscription, std::string_view channel) {
  if (!subscription.empty() && subscription.back() == '*') {
    return channel.substr(0, subscription.size() - 1) ==
           subscription.substr(0, subscription.size() - 1);
  }
  return subscription == channel;
}

// now + timeout, saturated so that a huge timeout means "no deadline" instead of overflowing.
Clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  const auto now = Clock::now();
  if (timeout >=
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now)) {
    return Clock::time_point::max();
  }
  return now + timeout;
}

std::chrono::milliseconds saturating_add(std::chrono::milliseconds a, std::chrono::milliseconds b) {
  if (b.count() > 0 && a > std::chrono::milliseconds::max() - b) {
    return std::chrono::milliseconds::max();
  }
  return a + b;
}

// A result with success: false.
bool refused(const boost::json::object& reply) {
  const auto* success = reply.if_contains("success");
  return success != nullptr && success->is_bool() && !success->get_bool();
}

// The reply's `data` object; a result without one is a protocol error.
const boost::json::object& data_of(const boost::json::object& reply) {
  const auto* data = reply.if_contains("data");
  if (data == nullptr || !data->is_object()) {
    throw ClientError(Kind::kProtocol, "the daemon's reply has no \"data\" object");
  }
  return data->get_object();
}

// Lenient field readers: a missing or mistyped optional field reads as empty.
std::string string_field(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

std::uint64_t unsigned_field(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) return 0;
  if (value->is_uint64()) return value->get_uint64();
  if (value->is_int64() && value->get_int64() >= 0) {
    return static_cast<std::uint64_t>(value->get_int64());
  }
  return 0;
}

bool bool_field(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_bool() && value->get_bool();
}

// Epoch milliseconds on the wire.
std::chrono::system_clock::time_point time_field(const boost::json::object& object,
                                                 std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || !value->is_number()) return {};
  boost::system::error_code ec;
  const auto millis = value->to_number<std::int64_t>(ec);
  if (ec) return {};
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
}

// Why a reply refuses: its error, else its data's reason, else `fallback`.
std::string refusal_reason(const boost::json::object& reply, std::string fallback) {
  if (const auto* error = reply.if_contains("error"); error != nullptr && error->is_string()) {
    return std::string(error->get_string());
  }
  if (const auto* data = reply.if_contains("data"); data != nullptr && data->is_object()) {
    if (const auto* text = data->get_object().if_contains("reason"); text && text->is_string()) {
      return std::string(text->get_string());
    }
  }
  return fallback;
}

std::string_view type_of(const boost::json::object& line) {
  const auto* type = line.if_contains("type");
  return type != nullptr && type->is_string() ? std::string_view(type->get_string())
                                              : std::string_view();
}

// Lines a running command sends before its result, with the command's id.
bool is_interim(const boost::json::object& line) {
  const std::string_view type = type_of(line);
  return type == "emit" || type == "prompt";
}

// `deadline` moved later by `pause`; "no deadline" stays so.
Clock::time_point later_by(Clock::time_point deadline, Clock::duration pause) {
  if (pause <= Clock::duration::zero()) return deadline;
  if (deadline > Clock::time_point::max() - pause) return Clock::time_point::max();
  return deadline + pause;
}

// An option's value or label as text: strings as they are, other JSON as its serialization.
std::string option_text(const boost::json::value* value) {
  if (value == nullptr || value->is_null()) return {};
  return value->is_string() ? std::string(value->get_string()) : boost::json::serialize(*value);
}

PromptRequest prompt_request(const boost::json::object& prompt) {
  PromptRequest request;
  request.type = string_field(prompt, "type");
  if (request.type.empty()) request.type = "text";
  request.message = string_field(prompt, "message");
  if (const auto* value = prompt.if_contains("default")) request.default_value = *value;
  if (const auto* options = prompt.if_contains("options"); options && options->is_array()) {
    for (const auto& option : options->get_array()) {
      PromptOption choice;
      if (option.is_object()) {
        choice.value = option_text(option.get_object().if_contains("value"));
        choice.label = option_text(option.get_object().if_contains("label"));
      } else {
        choice.value = option_text(&option);
      }
      if (choice.label.empty()) choice.label = choice.value;
      request.options.push_back(std::move(choice));
    }
  }
  request.raw = prompt;
  return request;
}

ParamDescription param_description(const boost::json::value& value) {
  if (!value.is_object()) {
    throw ClientError(Kind::kProtocol, "a parameter in the daemon's reply is not an object");
  }
  const auto& param = value.get_object();
  const auto* required = param.if_contains("required");
  return {.name = string_field(param, "name"),
          .type = string_field(param, "type"),
          .description = string_field(param, "description"),
          .required = required == nullptr || !required->is_bool() || required->get_bool()};
}

MethodDescription method_description(const boost::json::value& value) {
  if (!value.is_object()) {
    throw ClientError(Kind::kProtocol, "a method in the daemon's reply is not an object");
  }
  const auto& method = value.get_object();
  MethodDescription result{.name = string_field(method, "name"),
                           .description = string_field(method, "description")};
  if (const auto* params = method.if_contains("params"); params && params->is_array()) {
    for (const auto& param : params->get_array()) {
      result.params.push_back(param_description(param));
    }
  }
  return result;
}

LockInfo lock_info(const boost::json::value& value) {
  if (!value.is_object()) {
    throw ClientError(Kind::kProtocol, "a lock in the daemon's reply is not an object");
  }
  const auto& lock = value.get_object();
  return {.name = string_field(lock, "name"),
          .holder = string_field(lock, "holder"),
          .acquired_at = time_field(lock, "acquiredAt"),
          .expires_at = time_field(lock, "expiresAt"),
          .token = unsigned_field(lock, "token"),
          .waiters = static_cast<std::size_t>(unsigned_field(lock, "waiters"))};
}

}  // namespace

std::string default_session_id() {
  if (const char* fixed = std::getenv("PHOTON_SESSION_ID"); fixed != nullptr && *fixed != '\0') {
    return fixed;
  }
  static const std::string generated = [] {
    std::random_device entropy;
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(entropy()));
    return "cli-" + std::to_string(::getpid()) + "-" + hex;
  }();
  return generated;
}

std::filesystem::path socket_path_for(std::string_view photon_name) {
  if (auto error = photon_name_error(photon_name)) throw std::invalid_argument(*error);
  return photon_paths(photon_name).socket;
}

Client Client::connect(std::string_view photon_name, ClientOptions options) {
  return connect_socket(socket_path_for(photon_name), std::move(options));
}

namespace {

// A connected socket to the daemon listening at `socket`, after the checks Client::connect_socket
// states. Throws ClientError.
int open_connection(const std::filesystem::path& socket) {
  const std::string path = socket.string();
  const uid_t euid = ::geteuid();
  auto not_running = [&] {
    return ClientError(Kind::kNotRunning,
                       "cannot connect to " + path + ": " + std::strerror(ENOENT));
  };
  // The socket is reached through its directory's descriptor once that directory is known to be
  // ours or root's and writable by no one else: then nobody else can have replaced the socket.
  std::optional<PrivateDir> dir;
  std::optional<struct stat> found;
  const std::string name = socket.filename().string();
  try {
    dir = PrivateDir::open_trusted(socket.parent_path().empty() ? std::filesystem::path(".")
                                                                : socket.parent_path());
    if (dir) found = dir->status(name);
  } catch (const UntrustedPathError& error) {
    throw ClientError(Kind::kConnection, std::string("refusing to connect: ") + error.what());
  } catch (const std::system_error& error) {
    throw ClientError(Kind::kConnection, "cannot connect to " + path + ": " + error.what());
  }
  if (!dir || !found) throw not_running();
  if (auto distrust = socket_distrust(socket, *found, euid)) {
    throw ClientError(Kind::kConnection, "refusing to connect: " + *distrust);
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string reachable = dir->entry_path(name);
  if (reachable.size() >= sizeof address.sun_path) {
    throw ClientError(Kind::kConnection, "socket path is too long: " + reachable);
  }
  std::memcpy(address.sun_path, reachable.c_str(), reachable.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ClientError(Kind::kConnection, std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    const Kind kind =
        (error == ENOENT || error == ECONNREFUSED) ? Kind::kNotRunning : Kind::kConnection;
    throw ClientError(kind, "cannot connect to " + path + ": " + std::strerror(error));
  }
  // Whoever listens must be the daemon's owner or root, however the socket got there.
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    const int error = errno;
    ::close(fd);
    throw ClientError(Kind::kConnection,
                      "cannot read the credentials of " + path + ": " + std::strerror(error));
  }
  if (auto distrust = listener_distrust(socket, credentials.uid, euid)) {
    ::close(fd);
    throw ClientError(Kind::kConnection, "refusing to connect: " + *distrust);
  }
  return fd;
}

}  // namespace

Client Client::connect_socket(const std::filesystem::path& socket, ClientOptions options) {
  check_reconnect_options(options.reconnect);
  const int fd = open_connection(socket);
  return Client(fd, socket, std::move(options));
}

Client::Client(int fd, std::filesystem::path socket, ClientOptions options)
    : fd_(fd),
      socket_(std::move(socket)),
      options_(std::move(options)),
      connected_at_(Clock::now()) {
  session_id_ = options_.session_id.empty() ? default_session_id() : options_.session_id;
  if (options_.reconnect.enabled) jitter_.seed(std::random_device()());
}

Client::Client(Client&& other) noexcept { *this = std::move(other); }

Client& Client::operator=(Client&& other) noexcept {
  if (this == &other) return *this;
  if (fd_ >= 0) ::close(fd_);
  fd_ = std::exchange(other.fd_, -1);
  socket_ = std::move(other.socket_);
  options_ = std::move(other.options_);
  session_id_ = std::move(other.session_id_);
  input_ = std::move(other.input_);
  unclaimed_ = std::move(other.unclaimed_);
  subscriptions_ = std::move(other.subscriptions_);
  next_request_ = other.next_request_;
  resume_point_ = std::move(other.resume_point_);
  resume_point_made_ = other.resume_point_made_;
  made_count_ = other.made_count_;
  in_order_ = other.in_order_;
  resuming_ = other.resuming_;
  received_since_resume_point_ = std::move(other.received_since_resume_point_);
  in_outage_ = other.in_outage_;
  failed_attempts_ = other.failed_attempts_;
  cuts_while_catching_up_ = other.cuts_while_catching_up_;
  connected_at_ = other.connected_at_;
  next_attempt_ = other.next_attempt_;
  last_failure_ = std::move(other.last_failure_);
  last_failure_kind_ = other.last_failure_kind_;
  jitter_ = other.jitter_;
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

void Client::write_line(const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t count = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (count < 0) {
      if (errno == EINTR) continue;
      lose_connection(
          ClientError(Kind::kConnection, std::string("write: ") + std::strerror(errno)));
    }
    done += static_cast<std::size_t>(count);
  }
}

std::optional<std::string> Client::read_line(Clock::time_point deadline) {
  for (;;) {
    if (auto newline = input_.find('\n'); newline != std::string::npos) {
      std::string line = input_.substr(0, newline);
      input_.erase(0, newline + 1);
      return line;
    }
    if (input_.size() > kMaxReplyBytes) {
      throw ClientError(Kind::kProtocol, "reply line longer than 64 MiB");
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd waiting{fd_, POLLIN, 0};
    const int ready =
        ::poll(&waiting, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30)));
    if (ready < 0 && errno != EINTR) {
      lose_connection(ClientError(Kind::kConnection, std::string("poll: ") + std::strerror(errno)));
    }
    if (ready <= 0) continue;
    char buffer[64 * 1024];
    const ssize_t count = ::recv(fd_, buffer, sizeof buffer, 0);
    if (count < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      lose_connection(ClientError(Kind::kConnection, std::string("read: ") + std::strerror(errno)));
    }
    if (count == 0) {
      lose_connection(ClientError(Kind::kConnection, "the daemon closed the connection"));
    }
    input_.append(buffer, static_cast<std::size_t>(count));
  }
}

bool Client::take_pushed_line(const boost::json::object& line) {
  const std::string_view type = type_of(line);
  if (type == "refresh_needed") {
    Pushed refresh;
    refresh.message.channel = string_field(line, "channel");
    refresh.refresh_needed = true;
    unclaimed_.push_back(std::move(refresh));
    return true;
  }
  if (type != "channel_message") return false;
  ChannelMessage message;
  message.id = string_field(line, "id");
  message.channel = string_field(line, "channel");
  if (const auto* body = line.if_contains("message")) message.message = *body;
  message.event_id = string_field(line, "eventId");
  message.replay = bool_field(line, "replay");
  if (note_received(message.event_id, message.replay)) {
    unclaimed_.push_back(Pushed{.message = std::move(message)});
  }
  return true;
}

bool Client::note_received(const std::string& event_id, bool replay) {
  if (event_id.empty()) return true;  // a daemon without event ids: nothing to resume from
  if (!in_order_) {
    if (!received_since_resume_point_.insert(event_id).second) return false;
    // Replays may still come until every subscription is resumed and a live message follows.
    if (resuming_ || replay) return true;
    in_order_ = true;
    received_since_resume_point_.clear();
  } else if (replay) {
    return true;  // replayed on request(): older than what the connection has seen live
  }
  move_resume_point(event_id);
  return true;
}

void Client::move_resume_point(const std::string& event_id) {
  resume_point_ = event_id;
  resume_point_made_ = ++made_count_;
}

void Client::lose_connection(const ClientError& cause) {
  if (!options_.reconnect.enabled) throw cause;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  input_.clear();
  if (!in_outage_) {
    in_outage_ = true;
    // A connection that reached live messages, or lasted, was a success: the first attempt goes
    // at once (most drops are not restarts). One lost while still catching up counts as a failed
    // attempt, so that a daemon that cuts every resume is not hammered.
    const auto now = Clock::now();
    if (in_order_ || now - connected_at_ >= options_.reconnect.max_backoff) {
      failed_attempts_ = 0;
      cuts_while_catching_up_ = 0;
      next_attempt_ = now;
    } else {
      ++failed_attempts_;
      next_attempt_ = now + backoff_delay(options_.reconnect, failed_attempts_, jitter_);
      if (++cuts_while_catching_up_ >= kCutsBeforeGivingUpReplay) {
        resume_point_.clear();
        received_since_resume_point_.clear();
        cuts_while_catching_up_ = 0;
      }
    }
    last_failure_.clear();
    if (options_.reconnect.on_disconnect) options_.reconnect.on_disconnect(cause);
  }
  in_order_ = false;
  throw cause;
}

bool Client::reconnect_if_needed(Clock::time_point deadline) {
  while (fd_ < 0) {
    if (!options_.reconnect.enabled) {
      throw ClientError(Kind::kConnection, "the client has no connection (it was moved from)");
    }
    const auto wake = std::min(next_attempt_, deadline);
    if (Clock::now() < wake) std::this_thread::sleep_until(wake);
    if (Clock::now() < next_attempt_) return false;
    std::vector<std::string> refusals;
    try {
      fd_ = open_connection(socket_);
      refusals = resume_subscriptions();
    } catch (const ClientError& error) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      input_.clear();
      last_failure_ = error.what();
      last_failure_kind_ = error.kind();
      ++failed_attempts_;
      next_attempt_ = Clock::now() + backoff_delay(options_.reconnect, failed_attempts_, jitter_);
      // A daemon that answers with garbage is not fixed by trying again at once: say so.
      if (error.kind() == Kind::kProtocol) throw;
      continue;
    }
    in_outage_ = false;
    connected_at_ = Clock::now();
    if (options_.reconnect.on_reconnect) options_.reconnect.on_reconnect();
    if (!refusals.empty()) {
      std::string text = "after reconnecting, the daemon refused to resume ";
      for (std::size_t i = 0; i < refusals.size(); ++i) text += (i ? "; " : "") + refusals[i];
      throw ClientError(Kind::kRefused, text);
    }
  }
  return true;
}

std::vector<std::string> Client::resume_subscriptions() {
  resuming_ = true;
  struct Resumed {
    bool& resuming;
    ~Resumed() { resuming = false; }
  } resumed{resuming_};
  // A daemon that refuses the connection itself (--max-connections) says so in its first line: a
  // ping finds out before any subscription is sent, and the attempt counts as failed.
  await_reply(send_request({{"type", "ping"}}), deadline_after(options_.timeout));

  std::vector<std::size_t> order(subscriptions_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return resumes_before(subscriptions_[a].channel, subscriptions_[b].channel);
  });
  std::vector<std::string> refusals;
  std::vector<bool> dropped(subscriptions_.size(), false);
  for (const std::size_t index : order) {
    const Subscription& subscription = subscriptions_[index];
    boost::json::object request{{"type", "subscribe"}, {"channel", subscription.channel}};
    const bool resumable = !resume_point_.empty() && subscription.made < resume_point_made_;
    if (resumable) request["lastEventId"] = resume_point_;
    std::string refusal;
    try {
      const boost::json::object reply =
          await_reply(send_request(std::move(request)), deadline_after(options_.timeout));
      if (refused(reply)) refusal = refusal_reason(reply, "the daemon refused the subscription");
    } catch (const ClientError& error) {
      if (error.kind() != Kind::kRefused) throw;
      refusal = error.what();
    }
    if (!refusal.empty()) {
      refusals.push_back("\"" + subscription.channel + "\" (" + refusal + ")");
      dropped[index] = true;
    } else if (!resumable) {
      // Nothing arrived on the connection after this subscription was made, so no event id says
      // where it stood: what was published while the connection was down may be missed.
      Pushed refresh;
      refresh.message.channel = subscription.channel;
      refresh.refresh_needed = true;
      unclaimed_.push_back(std::move(refresh));
    }
  }
  std::size_t index = 0;
  std::erase_if(subscriptions_, [&](const Subscription&) { return dropped[index++]; });
  return refusals;
}

void Client::ensure_connected() {
  if (fd_ >= 0) return;
  if (reconnect_if_needed(deadline_after(options_.timeout))) return;
  if (last_failure_.empty()) {
    throw ClientError(Kind::kConnection,
                      "the connection to the daemon was lost; the client is reconnecting");
  }
  throw ClientError(
      last_failure_kind_,
      "still reconnecting to the daemon after the client's timeout: " + last_failure_);
}

std::string Client::send_request(boost::json::object request) {
  std::string id = "r" + std::to_string(next_request_++);
  request["id"] = id;
  if (!request.contains("sessionId")) request["sessionId"] = session_id_;
  write_line(boost::json::serialize(request) + "\n");
  return id;
}

boost::json::object Client::exchange(boost::json::object request,
                                     std::chrono::milliseconds timeout) {
  ensure_connected();
  try {
    const std::string id = send_request(std::move(request));
    return await_reply(id, deadline_after(timeout));
  } catch (const ClientError& error) {
    if (error.kind() != Kind::kConnection || fd_ >= 0) throw;
    throw ClientError(Kind::kConnection, error.what() + std::string(kLostRequestOutcome));
  }
}

boost::json::object Client::await_reply(const std::string& id, Clock::time_point deadline,
                                        const InterimHandler& interim) {
  for (;;) {
    std::optional<std::string> line = read_line(deadline);
    if (!line) throw ClientError(Kind::kTimeout, "no reply from the daemon within the timeout");
    boost::system::error_code ec;
    boost::json::value parsed = boost::json::parse(*line, ec);
    if (ec || !parsed.is_object()) {
      throw ClientError(Kind::kProtocol, "the daemon sent a line that is not a JSON object");
    }
    boost::json::object& reply = parsed.get_object();
    if (take_pushed_line(reply)) continue;
    const boost::json::value* reply_id = reply.if_contains("id");
    if (reply_id == nullptr || !reply_id->is_string() || reply_id->get_string() != id) {
      // An error for id "unknown" concerns the connection itself (refused at connect, a line
      // over the limit). Replies to earlier requests that timed out are skipped.
      const auto* error = reply.if_contains("error");
      const bool about_connection =
          reply_id == nullptr || !reply_id->is_string() || reply_id->get_string() == "unknown";
      if (about_connection && error != nullptr && error->is_string()) {
        throw ClientError(Kind::kRefused, std::string(error->get_string()));
      }
      decline_stray_prompt(reply);
      continue;
    }
    if (const auto* error = reply.if_contains("error"); error != nullptr && error->is_string()) {
      throw ClientError(Kind::kRefused, std::string(error->get_string()));
    }
    if (is_interim(reply)) {
      if (interim)
        interim(reply, deadline);
      else
        decline_stray_prompt(reply);
      continue;
    }
    return std::move(reply);
  }
}

void Client::answer_prompt(const std::string& id, const std::optional<boost::json::value>& value) {
  const boost::json::object response{{"type", "prompt_response"},
                                     {"id", id},
                                     {"promptValue", value ? *value : boost::json::value()}};
  write_line(boost::json::serialize(response) + "\n");
}

void Client::decline_stray_prompt(const boost::json::object& line) {
  const auto* id = line.if_contains("id");
  if (type_of(line) == "prompt" && id != nullptr && id->is_string()) {
    answer_prompt(std::string(id->get_string()), std::nullopt);
  }
}

boost::json::value Client::request(boost::json::object request) {
  boost::json::object reply = exchange(std::move(request), options_.timeout);
  if (refused(reply)) {
    throw ClientError(Kind::kRefused, refusal_reason(reply, "the daemon refused the request"));
  }
  const boost::json::value* data = reply.if_contains("data");
  return data != nullptr ? *data : boost::json::value(std::move(reply));
}

void Client::ping() { request({{"type", "ping"}}); }

std::size_t Client::publish(std::string_view channel, const boost::json::value& message) {
  boost::json::value data =
      request({{"type", "publish"}, {"channel", channel}, {"message", message}});
  const std::string event_id = string_field(data.as_object(), "eventId");
  if (!event_id.empty()) {
    // The reply comes after every message queued to this connection before the publish, and
    // after every replay (all subscriptions were resumed before this request was sent): its id
    // is a resume point for every subscription.
    in_order_ = true;
    received_since_resume_point_.clear();
    move_resume_point(event_id);
  }
  if (const auto* delivered = data.as_object().if_contains("delivered");
      delivered != nullptr && delivered->is_number()) {
    return delivered->to_number<std::size_t>();
  }
  return 0;
}

void Client::subscribe(std::string_view channel, MessageHandler handler) {
  request({{"type", "subscribe"}, {"channel", channel}});
  const auto existing = std::find_if(
      subscriptions_.begin(), subscriptions_.end(),
      [&](const Subscription& subscription) { return subscription.channel == channel; });
  if (existing == subscriptions_.end()) {
    subscriptions_.push_back(
        {.channel = std::string(channel), .handler = std::move(handler), .made = ++made_count_});
  } else if (handler) {
    existing->handler = std::move(handler);
  }
}

void Client::unsubscribe(std::string_view channel) {
  // Disconnected, the subscription ended with the connection: forgetting it is all there is.
  if (fd_ >= 0 || !options_.reconnect.enabled) {
    request({{"type", "unsubscribe"}, {"channel", channel}});
  }
  std::erase_if(subscriptions_,
                [&](const Subscription& subscription) { return subscription.channel == channel; });
}

namespace {

// The `lock` reply as a LockResult: acquired or extended, or refused with the reason.
LockResult lock_result(const boost::json::object& reply) {
  const boost::json::object& data = data_of(reply);
  const auto* acquired = data.if_contains("acquired");
  if (acquired == nullptr || !acquired->is_bool() || acquired->get_bool() == refused(reply)) {
    throw ClientError(Kind::kProtocol, "the daemon's reply to lock has no consistent \"acquired\"");
  }
  LockResult result;
  result.acquired = acquired->get_bool();
  result.name = string_field(data, "lockName");
  result.holder = string_field(data, "holder");
  result.expires_at = time_field(data, "expiresAt");
  if (result.acquired) {
    result.token = unsigned_field(data, "token");
    result.acquired_at = time_field(data, "acquiredAt");
    result.extended = bool_field(data, "extended");
  } else {
    result.reason = string_field(data, "reason");
  }
  return result;
}

}  // namespace

LockResult Client::acquire_lock(std::string_view name, const LockOptions& options) {
  boost::json::object request{{"type", "lock"},
                              {"lockName", name},
                              {"lockTimeout", options.ttl.count()},
                              {"lockWait", options.wait.count()}};
  if (options.release_on_disconnect) request["releaseOnDisconnect"] = true;
  // A waiting lock is answered when granted or when its wait ends: the wait is part of the timeout.
  const auto timeout =
      saturating_add(options_.timeout, std::max(options.wait, std::chrono::milliseconds(0)));
  return lock_result(exchange(std::move(request), timeout));
}

LockResult Client::renew_lock(std::string_view name, std::uint64_t token,
                              const LockOptions& options) {
  boost::json::object request{{"type", "lock"},
                              {"lockName", name},
                              {"lockTimeout", options.ttl.count()},
                              {"renewToken", token}};
  if (options.release_on_disconnect) request["releaseOnDisconnect"] = true;
  LockResult result = lock_result(exchange(std::move(request), options_.timeout));
  if (result.acquired && (!result.extended || result.token != token)) {
    // A daemon older than renewToken ignores it and takes a free lock anew: give that lock back,
    // since nobody asked for it, and say why the renewal cannot be trusted.
    try {
      release_lock(name);
    } catch (const ClientError&) {
      // The lock's lease ends it anyway.
    }
    throw ClientError(Kind::kProtocol, "the daemon does not support renewToken (it took lock \"" +
                                           std::string(name) + "\" anew instead of renewing it)");
  }
  return result;
}

LockRelease Client::release_lock(std::string_view name) {
  const boost::json::object reply =
      exchange({{"type", "unlock"}, {"lockName", name}}, options_.timeout);
  const boost::json::object& data = data_of(reply);
  LockRelease result;
  result.released = !refused(reply) && bool_field(data, "released");
  if (!result.released) {
    result.reason = string_field(data, "reason");
    if (result.reason.empty()) result.reason = "the daemon did not release the lock";
  }
  return result;
}

std::vector<LockInfo> Client::list_locks() {
  const boost::json::value data = request({{"type", "list_locks"}});
  const auto* locks = data.is_object() ? data.get_object().if_contains("locks") : nullptr;
  if (locks == nullptr || !locks->is_array()) {
    throw ClientError(Kind::kProtocol, "the daemon's reply to list_locks has no \"locks\" array");
  }
  std::vector<LockInfo> result;
  result.reserve(locks->get_array().size());
  for (const auto& lock : locks->get_array()) result.push_back(lock_info(lock));
  return result;
}

std::optional<LockInfo> Client::query_lock(std::string_view name) {
  const boost::json::value data = request({{"type", "query_lock"}, {"lockName", name}});
  const auto* lock = data.is_object() ? data.get_object().if_contains("lock") : nullptr;
  if (lock == nullptr) {
    throw ClientError(Kind::kProtocol, "the daemon's reply to query_lock has no \"lock\"");
  }
  if (lock->is_null()) return std::nullopt;
  return lock_info(*lock);
}

boost::json::value Client::call(std::string_view method, const boost::json::object& args,
                                CallOptions options) {
  boost::json::object request{{"type", "command"}, {"method", method}, {"args", args}};
  if (!options.client_type.empty()) request["clientType"] = options.client_type;
  ensure_connected();
  std::string id;
  try {
    id = send_request(std::move(request));
  } catch (const ClientError& error) {
    if (error.kind() != Kind::kConnection || fd_ >= 0) throw;
    throw ClientError(Kind::kConnection, error.what() + std::string(kLostRequestOutcome));
  }

  // Handler time is the caller's, not the daemon's: it moves the deadline.
  auto interim = [&](boost::json::object& line, Clock::time_point& deadline) {
    const auto started = Clock::now();
    if (type_of(line) == "emit") {
      const auto* data = line.if_contains("emitData");
      if (options.on_emit && data != nullptr && data->is_object()) {
        options.on_emit(data->get_object());
      }
    } else {
      const auto* prompt = line.if_contains("prompt");
      std::optional<boost::json::value> answer;
      if (options.on_prompt && prompt != nullptr && prompt->is_object()) {
        try {
          answer = options.on_prompt(prompt_request(prompt->get_object()));
        } catch (...) {
          // The method would wait for an answer that never comes; the handler's error wins over
          // a failure to send the refusal.
          try {
            answer_prompt(id, std::nullopt);
          } catch (const ClientError&) {
          }
          throw;
        }
      }
      answer_prompt(id, answer);
    }
    deadline = later_by(deadline, Clock::now() - started);
  };

  const auto deadline =
      options.timeout.count() > 0 ? deadline_after(options.timeout) : Clock::time_point::max();
  boost::json::object reply;
  try {
    reply = await_reply(id, deadline, interim);
  } catch (const ClientError& error) {
    if (error.kind() == Kind::kConnection && fd_ < 0) {
      throw ClientError(Kind::kConnection, error.what() + std::string(kLostRequestOutcome));
    }
    if (error.kind() != Kind::kTimeout) throw;
    throw ClientError(Kind::kTimeout, "no result from method \"" + std::string(method) +
                                          "\" within " + std::to_string(options.timeout.count()) +
                                          " ms (it may still be running)");
  }
  if (refused(reply)) {
    throw ClientError(Kind::kRefused,
                      refusal_reason(reply, "method \"" + std::string(method) + "\" failed"));
  }
  const boost::json::value* data = reply.if_contains("data");
  return data != nullptr ? *data : boost::json::value();
}

std::vector<MethodDescription> Client::list_methods() {
  const boost::json::value data = request({{"type", "list_methods"}});
  const auto* methods = data.is_object() ? data.get_object().if_contains("methods") : nullptr;
  if (methods == nullptr || !methods->is_array()) {
    throw ClientError(Kind::kProtocol,
                      "the daemon's reply to list_methods has no \"methods\" array");
  }
  std::vector<MethodDescription> result;
  result.reserve(methods->get_array().size());
  for (const auto& method : methods->get_array()) result.push_back(method_description(method));
  return result;
}

boost::json::object Client::status() { return request({{"type", "status"}}).as_object(); }

void Client::shutdown() { request({{"type", "shutdown"}}); }

const MessageHandler* Client::handler_for(std::string_view channel) const {
  for (const Subscription& subscription : subscriptions_) {
    if (subscription.handler && channel_matches(subscription.channel, channel)) {
      return &subscription.handler;
    }
  }
  return nullptr;
}

bool Client::read_pushed_line(Clock::time_point deadline) {
  std::optional<std::string> line = read_line(deadline);
  if (!line) return false;
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(*line, ec);
  if (ec || !parsed.is_object()) {
    throw ClientError(Kind::kProtocol, "the daemon sent a line that is not a JSON object");
  }
  if (!take_pushed_line(parsed.get_object())) decline_stray_prompt(parsed.get_object());
  return true;
}

std::optional<ChannelMessage> Client::dispatch_queued(std::size_t& handled) {
  while (!unclaimed_.empty()) {
    Pushed pushed = std::move(unclaimed_.front());
    unclaimed_.pop_front();
    if (pushed.refresh_needed) {
      // Without reconnect only a request() of the caller's own asks for a resume.
      if (options_.reconnect.on_refresh_needed) {
        options_.reconnect.on_refresh_needed(pushed.message.channel);
      }
      continue;
    }
    const MessageHandler* handler = handler_for(pushed.message.channel);
    if (handler == nullptr) return std::move(pushed.message);
    (*handler)(pushed.message);
    ++handled;
  }
  return std::nullopt;
}

std::optional<ChannelMessage> Client::next(std::chrono::milliseconds timeout) {
  const auto deadline = deadline_after(timeout);
  std::size_t handled = 0;
  for (;;) {
    if (auto message = dispatch_queued(handled)) return message;
    if (fd_ < 0) {
      if (!reconnect_if_needed(deadline)) return std::nullopt;
      continue;  // resuming may have queued messages and refresh news
    }
    try {
      if (!read_pushed_line(deadline)) return std::nullopt;
    } catch (const ClientError& error) {
      if (error.kind() != Kind::kConnection || fd_ >= 0) throw;
    }
  }
}

std::size_t Client::poll(std::chrono::milliseconds timeout) {
  const auto deadline = deadline_after(timeout);
  std::size_t handled = 0;
  std::deque<Pushed> kept;
  // Messages without a handler stay queued for next(), in order, also when reading fails.
  auto keep_unhandled = [&] {
    for (auto& pushed : unclaimed_) kept.push_back(std::move(pushed));
    unclaimed_ = std::move(kept);
  };
  try {
    for (;;) {
      while (auto message = dispatch_queued(handled)) {
        kept.push_back(Pushed{.message = std::move(*message)});
      }
      if (fd_ < 0) {
        if (!reconnect_if_needed(deadline)) break;
        continue;
      }
      try {
        if (!read_pushed_line(deadline)) break;
      } catch (const ClientError& error) {
        if (error.kind() != Kind::kConnection || fd_ >= 0) throw;
      }
    }
  } catch (...) {
    keep_unhandled();
    throw;
  }
  keep_unhandled();
  return handled;
}

}  // namespace photon
