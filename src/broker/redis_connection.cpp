// The hiredis asynchronous context on the Asio loop: hiredis says when it wants to read or write
// (its ev hooks), the loop waits for the socket and hands the event back. hiredis frees the context
// itself when the connection ends; its cleanup hook is where this side lets go and reconnects.
#include "broker/redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <boost/asio/post.hpp>

namespace photon::broker {
namespace asio = boost::asio;
using std::chrono::milliseconds;

const char* link_state_name(LinkState state) {
  switch (state) {
    case LinkState::kConnecting:
      return "connecting";
    case LinkState::kReady:
      return "connected";
    case LinkState::kDown:
      return "down";
  }
  return "down";
}

namespace {

RedisConnection* owner_of(const redisAsyncContext* context) {
  return static_cast<RedisConnection*>(context->data);
}

std::string context_error(const redisAsyncContext* context, const char* otherwise) {
  if (context != nullptr && context->err != 0 && context->errstr != nullptr) return context->errstr;
  return otherwise;
}

}  // namespace

RedisConnection::RedisConnection(asio::io_context& loop, RedisConnectionOptions options,
                                 std::function<void(LinkState, const std::string&)> on_state,
                                 std::function<void()> on_ready)
    : loop_(loop),
      options_(std::move(options)),
      on_state_(std::move(on_state)),
      on_ready_(std::move(on_ready)),
      resolver_(loop),
      descriptor_(loop),
      retry_timer_(loop),
      watchdog_(loop),
      backoff_(options_.backoff_min) {}

RedisConnection::~RedisConnection() {
  closing_ = true;
  resolver_.cancel();
  retry_timer_.cancel();
  watchdog_.cancel();
  // Waiting commands are dropped without their callbacks: their owners are going too.
  if (ac_ != nullptr) redisAsyncFree(ac_);
}

void RedisConnection::start() {
  connect_started_ = std::chrono::steady_clock::now();
  state_ = LinkState::kConnecting;
  arm_watchdog();
  if (options_.url.is_unix()) return connect_to(options_.url.socket_path, 0);
  // hiredis would resolve with a blocking getaddrinfo(): the loop resolves, hiredis gets an
  // address.
  std::weak_ptr<RedisConnection*> alive = self_;
  resolver_.async_resolve(
      options_.url.host, std::to_string(options_.url.port),
      [this, alive](boost::system::error_code ec, asio::ip::tcp::resolver::results_type results) {
        if (alive.expired() || closing_ || ec == asio::error::operation_aborted) return;
        if (ec || results.empty()) {
          last_error_ = "cannot resolve " + options_.url.host + ": " + ec.message();
          set_state(LinkState::kDown, last_error_);
          return schedule_reconnect();
        }
        connect_to(results.begin()->endpoint().address().to_string(), options_.url.port);
      });
}

void RedisConnection::connect_to(const std::string& host_or_path, std::uint16_t port) {
  redisAsyncContext* context = options_.url.is_unix()
                                   ? redisAsyncConnectUnix(host_or_path.c_str())
                                   : redisAsyncConnect(host_or_path.c_str(), port);
  if (context == nullptr) throw std::bad_alloc();
  if (context->err != 0) {
    last_error_ = context_error(context, "cannot connect");
    redisAsyncFree(context);
    set_state(LinkState::kDown, last_error_);
    return schedule_reconnect();
  }
  ac_ = context;
  ++generation_;
  attach();
  // A peer gone without a word (a host down, a cable pulled) is noticed by TCP keepalive.
  if (!options_.url.is_unix()) redisEnableKeepAlive(&ac_->c);
  arm_watchdog();
}

void RedisConnection::attach() {
  ac_->data = this;
  ac_->ev.data = this;
  ac_->ev.addRead = &RedisConnection::add_read;
  ac_->ev.delRead = &RedisConnection::del_read;
  ac_->ev.addWrite = &RedisConnection::add_write;
  ac_->ev.delWrite = &RedisConnection::del_write;
  ac_->ev.cleanup = &RedisConnection::cleanup;
  want_read_ = want_write_ = false;
  descriptor_.assign(ac_->c.fd);
  // hiredis learns that a non-blocking connect finished from the first writable event; setting
  // the callback asks for that event.
  redisAsyncSetConnectCallback(ac_, &RedisConnection::on_connect);
}

void RedisConnection::on_connect(const redisAsyncContext* context, int status) {
  RedisConnection* self = owner_of(context);
  if (status != REDIS_OK) {
    // hiredis frees the context after this returns; cleanup() then reconnects.
    self->last_error_ = context_error(context, "cannot connect");
    return;
  }
  self->setup();
}

void RedisConnection::add_read(void* self) {
  auto* connection = static_cast<RedisConnection*>(self);
  connection->want_read_ = true;
  connection->arm_read();
}
void RedisConnection::del_read(void* self) {
  static_cast<RedisConnection*>(self)->want_read_ = false;
}
void RedisConnection::add_write(void* self) {
  auto* connection = static_cast<RedisConnection*>(self);
  connection->want_write_ = true;
  connection->arm_write();
}
void RedisConnection::del_write(void* self) {
  static_cast<RedisConnection*>(self)->want_write_ = false;
}

void RedisConnection::cleanup(void* self) {
  auto* connection = static_cast<RedisConnection*>(self);
  // hiredis closes the descriptor itself: release it from Asio (pending waits end, aborted).
  connection->descriptor_.release();
  connection->ac_ = nullptr;
  ++connection->generation_;
  connection->want_read_ = connection->want_write_ = false;
  connection->pending_ = 0;
  if (connection->closing_) return;
  // Reported from the loop, not from inside hiredis's teardown of the context.
  asio::post(connection->loop_,
             [connection, alive = std::weak_ptr<RedisConnection*>(connection->self_)] {
               if (alive.expired() || connection->closing_) return;
               connection->set_state(LinkState::kDown, connection->last_error_.empty()
                                                           ? "connection closed"
                                                           : connection->last_error_);
               connection->schedule_reconnect();
             });
}

void RedisConnection::arm_read() {
  if (reading_ || ac_ == nullptr) return;
  reading_ = true;
  descriptor_.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this, alive = std::weak_ptr<RedisConnection*>(self_),
                          generation = generation_](boost::system::error_code ec) {
                           if (alive.expired()) return;
                           reading_ = false;
                           if (ec || generation != generation_ || ac_ == nullptr) return;
                           redisAsyncHandleRead(ac_);  // may free the context
                           if (generation == generation_ && want_read_) arm_read();
                         });
}

void RedisConnection::arm_write() {
  if (writing_ || ac_ == nullptr) return;
  writing_ = true;
  descriptor_.async_wait(asio::posix::stream_descriptor::wait_write,
                         [this, alive = std::weak_ptr<RedisConnection*>(self_),
                          generation = generation_](boost::system::error_code ec) {
                           if (alive.expired()) return;
                           writing_ = false;
                           if (ec || generation != generation_ || ac_ == nullptr) return;
                           redisAsyncHandleWrite(ac_);  // connects, writes; may free the context
                           if (generation == generation_ && want_write_) arm_write();
                         });
}

void RedisConnection::setup() {
  // AUTH and SELECT go first, pipelined; the PING after them says the connection is usable.
  auto check = [this](const char* what) {
    return [this, what](const redisReply* reply, const std::string& error) {
      if (reply == nullptr) return;  // the connection went; cleanup() handles it
      if (reply->type == REDIS_REPLY_ERROR) {
        drop(std::string(what) + " failed: " + std::string(reply->str, reply->len));
      }
      (void)error;
    };
  };
  const RedisUrl& url = options_.url;
  if (!url.password.empty()) {
    if (url.user.empty()) {
      send({"AUTH", url.password}, check("AUTH"));
    } else {
      send({"AUTH", url.user, url.password}, check("AUTH"));
    }
  }
  if (url.db != 0) send({"SELECT", std::to_string(url.db)}, check("SELECT"));
  // ROLE rather than PING: a replica (read-only, as a failover leaves the old primary) answers
  // but refuses every write, so the connection is not ready; it is dropped and retried with a
  // growing backoff until the address leads to a primary again.
  send({"ROLE"}, [this](const redisReply* reply, const std::string&) {
    if (reply == nullptr || ac_ == nullptr) return;
    if (ac_->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) return;
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string_view error(reply->str, reply->len);
      // A server older than ROLE (2.8.12) is taken as it is.
      if (!error.starts_with("ERR unknown command")) return drop(std::string(error));
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
               reply->element[0]->type == REDIS_REPLY_STRING &&
               std::string_view(reply->element[0]->str, reply->element[0]->len) != "master") {
      return drop("a read-only replica, not a primary");
    }
    backoff_ = options_.backoff_min;
    if (ever_ready_) ++reconnects_;
    ever_ready_ = true;
    state_ = LinkState::kReady;
    last_error_.clear();
    if (on_ready_) on_ready_();
    set_state(LinkState::kReady, {});
  });
}

void RedisConnection::set_state(LinkState state, const std::string& reason) {
  state_ = state;
  if (on_state_) on_state_(state, reason);
}

void RedisConnection::command(std::vector<std::string> args, Reply done) {
  if (state_ != LinkState::kReady || ac_ == nullptr) {
    return fail_later(std::move(done), "redis at " + options_.url.redacted() + " is unreachable" +
                                           (last_error_.empty() ? "" : " (" + last_error_ + ")"));
  }
  if (pending_ >= options_.max_pending) {
    return fail_later(std::move(done), "redis at " + options_.url.redacted() + " is too slow: " +
                                           std::to_string(pending_) + " commands wait for replies");
  }
  send(std::move(args), std::move(done));
}

void RedisConnection::fail_later(Reply done, std::string error) {
  asio::post(loop_, [done = std::move(done), error = std::move(error)] { done(nullptr, error); });
}

void RedisConnection::send(std::vector<std::string> args, Reply done) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* callback = new Reply(std::move(done));
  if (ac_ == nullptr || redisAsyncCommandArgv(ac_, &RedisConnection::on_reply, callback,
                                              static_cast<int>(argv.size()), argv.data(),
                                              lengths.data()) != REDIS_OK) {
    Reply failed = std::move(*callback);
    delete callback;
    return fail_later(std::move(failed), "redis connection is closing");
  }
  if (pending_++ == 0) {
    last_progress_ = std::chrono::steady_clock::now();
    arm_watchdog();
  }
}

void RedisConnection::on_reply(redisAsyncContext* context, void* reply, void* privdata) {
  std::unique_ptr<Reply> callback(static_cast<Reply*>(privdata));
  RedisConnection* self = owner_of(context);
  if (self->closing_) return;
  if (reply != nullptr) {
    if (self->pending_ > 0) --self->pending_;
    self->last_progress_ = std::chrono::steady_clock::now();
    const auto* answer = static_cast<const redisReply*>(reply);
    (*callback)(answer, {});
    // A server that cannot serve writes now (a primary demoted by a failover, a replica without
    // its primary, one still loading its data) would refuse every lock for as long as the
    // connection stays: reconnect, and find the current primary through the same address.
    if (answer->type == REDIS_REPLY_ERROR && answer->str != nullptr) {
      const std::string_view error(answer->str, answer->len);
      if (error.starts_with("READONLY") || error.starts_with("MASTERDOWN") ||
          error.starts_with("LOADING")) {
        self->drop(std::string(error.substr(0, error.find(' '))) + " from redis");
      }
    }
    return;
  }
  (*callback)(nullptr, "connection to redis at " + self->options_.url.redacted() + " lost" +
                           (self->last_error_.empty() ? "" : " (" + self->last_error_ + ")"));
}

void RedisConnection::psubscribe(const std::vector<std::string>& patterns, Message on_message,
                                 std::function<void()> subscribed) {
  on_message_ = std::move(on_message);
  on_subscribed_ = std::move(subscribed);
  patterns_ = patterns.size();
  if (ac_ == nullptr || patterns.empty()) return;
  std::vector<const char*> argv{"PSUBSCRIBE"};
  std::vector<std::size_t> lengths{10};
  for (const std::string& pattern : patterns) {
    argv.push_back(pattern.c_str());
    lengths.push_back(pattern.size());
  }
  redisAsyncCommandArgv(ac_, &RedisConnection::on_pmessage, this, static_cast<int>(argv.size()),
                        argv.data(), lengths.data());
}

void RedisConnection::on_pmessage(redisAsyncContext*, void* reply, void* privdata) {
  auto* self = static_cast<RedisConnection*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  if (self->closing_ || r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  const std::string_view kind(r->element[0]->str, r->element[0]->len);
  if (kind == "psubscribe") {
    // One confirmation per pattern, each with the count subscribed so far on this connection
    // (which starts afresh at every reconnect).
    const redisReply* count = r->element[2];
    const bool all = count->type == REDIS_REPLY_INTEGER &&
                     count->integer >= static_cast<long long>(self->patterns_);
    if (all && self->on_subscribed_) self->on_subscribed_();
    return;
  }
  if (kind != "pmessage" || r->elements < 4) return;
  const redisReply* channel = r->element[2];
  const redisReply* payload = r->element[3];
  if (channel->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING) return;
  if (self->on_message_) {
    self->on_message_(std::string_view(channel->str, channel->len),
                      std::string_view(payload->str, payload->len));
  }
}

std::size_t RedisConnection::buffered_bytes() const {
  return ac_ == nullptr || ac_->c.obuf == nullptr ? 0 : sdslen(ac_->c.obuf);
}

void RedisConnection::drop(const std::string& reason) {
  last_error_ = reason;
  if (ac_ != nullptr) redisAsyncFree(ac_);  // deferred by hiredis when inside its callback
}

void RedisConnection::schedule_reconnect() {
  // Full jitter over the upper half, so daemons that lost Redis together do not return together.
  std::uniform_int_distribution<long> spread(backoff_.count() / 2, backoff_.count());
  const milliseconds delay(spread(jitter_));
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || closing_) return;
    set_state(LinkState::kConnecting, {});
    start();
  });
}

void RedisConnection::arm_watchdog() {
  using clock = std::chrono::steady_clock;
  clock::time_point deadline;
  if (state_ == LinkState::kConnecting && ac_ != nullptr) {
    deadline = connect_started_ + options_.connect_timeout;
  } else if (pending_ > 0) {
    deadline = last_progress_ + options_.command_timeout;
  } else {
    return;
  }
  watchdog_.expires_at(deadline);
  watchdog_.async_wait([this](boost::system::error_code ec) {
    if (ec || closing_) return;
    const auto now = clock::now();
    if (state_ == LinkState::kConnecting && ac_ != nullptr &&
        now >= connect_started_ + options_.connect_timeout) {
      return drop("no connection within " + std::to_string(options_.connect_timeout.count()) +
                  " ms");
    }
    if (state_ == LinkState::kReady && pending_ > 0 &&
        now >= last_progress_ + options_.command_timeout) {
      return drop("no reply within " + std::to_string(options_.command_timeout.count()) + " ms");
    }
    arm_watchdog();
  });
}

}  // namespace photon::broker
