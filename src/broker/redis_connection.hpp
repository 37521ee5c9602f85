// One connection to Redis through hiredis's asynchronous API, driven by the daemon's event loop:
// no thread of its own and no blocking call (host names are resolved by Asio, connect and replies
// are waited for by the loop). It reconnects by itself with capped exponential backoff.
#pragma once

#include "broker/redis_url.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;
struct redisReply;

namespace photon::broker {

struct RedisConnectionOptions {
  RedisUrl url;
  std::chrono::milliseconds connect_timeout{2000};
  // A command without any reply for this long means the server or the path to it is gone: the
  // connection is dropped (every waiting command fails) and made again.
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
  std::size_t max_pending = 100'000;
};

// A connection's state as the broker reports it.
enum class LinkState { kConnecting, kReady, kDown };
const char* link_state_name(LinkState state);

// Invariants: ac_ is non-null from connect until hiredis frees the context (its cleanup hook
// runs then); descriptor_ wraps ac_'s fd exactly while ac_ is non-null; generation_ changes
// whenever ac_ does, so a wait completed for an old context is ignored.
// Thread rule: the event loop thread only. Callbacks run on it, never from inside command().
class RedisConnection {
 public:
  // Called exactly once per command: with the reply (valid during the call only; it may be a
  // Redis error reply), or with null and why the command got no reply.
  using Reply = std::function<void(const redisReply* reply, const std::string& error)>;
  // A pattern subscription's message: (channel, payload).
  using Message = std::function<void(std::string_view channel, std::string_view payload)>;

  // `on_state` hears every change of state (with the reason for kDown); `on_ready` runs once the
  // connection is usable (authenticated, database selected), before on_state(kReady), and may
  // send commands (a subscriber subscribes there).
  RedisConnection(boost::asio::io_context& loop, RedisConnectionOptions options,
                  std::function<void(LinkState, const std::string&)> on_state,
                  std::function<void()> on_ready);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void start();

  // Sends a command; `done` is called later in every case (also when the connection is not
  // ready or too many commands wait, with an error). Commands are written in call order.
  void command(std::vector<std::string> args, Reply done);

  // Subscribes to `patterns` on this connection (which may then send nothing but subscriptions):
  // `on_message` gets every message of any of them; `subscribed` hears when all are confirmed.
  void psubscribe(const std::vector<std::string>& patterns, Message on_message,
                  std::function<void()> subscribed);

  LinkState state() const { return state_; }
  const std::string& last_error() const { return last_error_; }
  std::uint64_t reconnects() const { return reconnects_; }
  std::size_t pending() const { return pending_; }
  // Bytes of commands written but not yet sent to Redis (hiredis's output buffer).
  std::size_t buffered_bytes() const;

 private:
  static void on_reply(redisAsyncContext* context, void* reply, void* privdata);
  static void on_pmessage(redisAsyncContext* context, void* reply, void* privdata);
  static void on_connect(const redisAsyncContext* context, int status);
  static void add_read(void* self);
  static void del_read(void* self);
  static void add_write(void* self);
  static void del_write(void* self);
  static void cleanup(void* self);

  void connect_to(const std::string& host_or_path, std::uint16_t port);
  void attach();
  void arm_read();
  void arm_write();
  void setup();
  void set_state(LinkState state, const std::string& reason);
  void send(std::vector<std::string> args, Reply done);
  void fail_later(Reply done, std::string error);
  // Closes the connection (its waiting commands fail with `reason`); a reconnect follows.
  void drop(const std::string& reason);
  void schedule_reconnect();
  void arm_watchdog();

  boost::asio::io_context& loop_;
  RedisConnectionOptions options_;
  std::function<void(LinkState, const std::string&)> on_state_;
  std::function<void()> on_ready_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::posix::stream_descriptor descriptor_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer watchdog_;
  redisAsyncContext* ac_ = nullptr;
  std::uint64_t generation_ = 0;
  bool want_read_ = false;
  bool want_write_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  LinkState state_ = LinkState::kConnecting;
  std::string last_error_;
  std::chrono::milliseconds backoff_;
  std::mt19937 jitter_{std::random_device{}()};
  std::uint64_t reconnects_ = 0;
  bool ever_ready_ = false;
  std::size_t pending_ = 0;
  std::chrono::steady_clock::time_point connect_started_;
  std::chrono::steady_clock::time_point last_progress_;
  // The subscription handler outlives single replies: hiredis calls it for every message.
  Message on_message_;
  std::function<void()> on_subscribed_;
  std::size_t patterns_ = 0;  // subscribed to at once: confirmed when Redis counts them all
  // Alive while this object is: resolver and timer handlers check it before touching `this`.
  std::shared_ptr<RedisConnection*> self_ = std::make_shared<RedisConnection*>(this);
};

}  // namespace photon::broker
