// The Redis broker's core: its two connections (commands, and the subscriber whose one pattern
// carries channel messages, lock releases and job notices), its state as status reports it, and
// channel messages forwarded and received. Locks: redis_broker_locks.cpp; jobs:
// redis_broker_jobs.cpp.
#include "broker/redis_broker.hpp"

#include "broker/redis_reply.hpp"
#include "channels/photon_core_form.hpp"
#include "common/defaults.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <algorithm>
#include <random>
#include <utility>

namespace photon::broker {
namespace json = boost::json;
namespace {

constexpr std::chrono::seconds kFirstReminder{60};
constexpr std::chrono::seconds kLastReminder{3600};
constexpr std::chrono::milliseconds kFlushStep{5};

// `text` as a PSUBSCRIBE pattern matching itself literally.
std::string glob_escaped(std::string_view text) {
  std::string escaped;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return escaped;
}

// A deployment of a photon in Redis: its name, with the database when not 0 ("kanban@1").
std::string deployment(std::string_view photon_name, unsigned db) {
  std::string name(photon_name);
  if (db != 0) name += "@" + std::to_string(db);
  return name;
}

// The prefix of a deployment's pub/sub channels in Redis (see channel_prefix_).
std::string own_channel_prefix(std::string_view photon_name, unsigned db) {
  return "photon:" + deployment(photon_name, db) + ":";
}

}  // namespace

std::optional<std::string> photon_core_prefix_error(std::string_view prefix,
                                                    std::string_view photon_name) {
  if (prefix.empty()) return "the photon-core channel prefix is empty";
  // The photon's channels in database 0 (photon:NAME:) and in any other (photon:NAME@DB:): pub/sub
  // ignores databases, so a deployment on one would hear the others' through an overlap.
  const std::string own = "photon:" + std::string(photon_name);
  for (const std::string& names : {own + ":", own + "@"}) {
    if (names.starts_with(prefix) || prefix.starts_with(names)) {
      return "the photon-core channel prefix \"" + std::string(prefix) +
             "\" overlaps this photon's own Redis channels (" + own +
             ":...): choose another prefix on both sides";
    }
  }
  return std::nullopt;
}

std::string RedisBroker::random_id() {
  std::random_device device;
  std::uniform_int_distribution<std::uint64_t> bits;
  std::uint64_t value = bits(device);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (char& digit : id) {
    digit = kHex[value & 0xf];
    value >>= 4;
  }
  return id;
}

RedisBroker::RedisBroker(boost::asio::io_context& loop, const Clock& clock,
                         RedisBrokerOptions options)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      prefix_("photon:" + options_.photon_name + ":"),
      // Pub/sub ignores the database number: without it in the names, deployments of one photon
      // on databases 0 and 1 of a Redis (production and staging) would hear each other.
      channel_prefix_(own_channel_prefix(options_.photon_name, options_.url.db)),
      instance_id_(random_id()),
      since_(clock.system()),
      // The daemons of one photon (and database) share the mark's prefix: what one publishes
      // on photon-core's channels, the others have from the photon's own channel already.
      photon_core_mark_prefix_(deployment(options_.photon_name, options_.url.db) + "/"),
      renew_timer_(loop),
      flush_timer_(loop) {
  photon_core_mark_ = photon_core_mark_prefix_ + instance_id_;
  const RedisConnectionOptions connection_options{.url = options_.url};
  commands_ = std::make_unique<RedisConnection>(
      loop, connection_options,
      [this](LinkState state, const std::string& reason) { on_state("commands", state, reason); },
      [this] { sync_jobs(); });
  subscriber_ = std::make_unique<RedisConnection>(
      loop, connection_options,
      [this](LinkState state, const std::string& reason) {
        if (state != LinkState::kReady) subscribed_ = false;
        on_state("subscriber", state, reason);
      },
      [this] {
        // One pattern carries everything: channel messages, lock releases, job changes; a second
        // one photon-core's channels, when they are bridged.
        std::vector<std::string> patterns{glob_escaped(channel_prefix_) + "*"};
        if (!options_.photon_core_prefix.empty()) {
          patterns.push_back(glob_escaped(options_.photon_core_prefix) + "*");
        }
        subscriber_->psubscribe(
            patterns,
            [this](std::string_view channel, std::string_view payload) {
              if (!options_.photon_core_prefix.empty() &&
                  channel.starts_with(options_.photon_core_prefix)) {
                on_photon_core_message(channel.substr(options_.photon_core_prefix.size()), payload);
              } else {
                on_message(channel, payload);
              }
            },
            [this] {
              subscribed_ = true;
              on_state("subscriber", LinkState::kReady, {});
              // Job notices sent while this connection was down (or not yet subscribed) were
              // missed: read the jobs again now that no more can be.
              if (commands_->state() == LinkState::kReady) sync_jobs();
            });
      });
}

RedisBroker::~RedisBroker() = default;

void RedisBroker::start() {
  spdlog::info("broker: redis at {} (daemon instance {})", options_.url.redacted(), instance_id_);
  if (!options_.photon_core_prefix.empty()) {
    spdlog::info("broker: photon-core's channels {}* are shared with this photon's",
                 options_.photon_core_prefix);
  }
  commands_->start();
  subscriber_->start();
}

LinkState RedisBroker::overall() const {
  const LinkState a = commands_->state();
  const LinkState b = subscribed_ ? subscriber_->state() : LinkState::kConnecting;
  if (a == LinkState::kReady && b == LinkState::kReady) return LinkState::kReady;
  if (a == LinkState::kDown || subscriber_->state() == LinkState::kDown) return LinkState::kDown;
  return LinkState::kConnecting;
}

void RedisBroker::on_state(const char* role, LinkState state, const std::string& reason) {
  if (state == LinkState::kDown && !reason.empty()) last_error_ = std::string(role) + ": " + reason;
  const LinkState now = overall();
  if (now == reported_) return;
  // Logged: becoming usable, ceasing to be, and the first failure to connect. Retries while Redis
  // stays away are not (they would fill the log).
  if (now == LinkState::kReady) {
    spdlog::info("broker: connected to redis at {}", options_.url.redacted());
    announced_down_ = false;
    next_reminder_ = kFirstReminder;
  } else if (!announced_down_ && (reported_ == LinkState::kReady || now == LinkState::kDown)) {
    spdlog::warn(
        "broker: redis at {} unreachable ({}); channels are local only, locks are refused "
        "and jobs do not fire until it is back (retrying in the background)",
        options_.url.redacted(), last_error_.empty() ? "connection lost" : last_error_);
    announced_down_ = true;
  } else if (now == LinkState::kDown && clock_.system() - since_ >= next_reminder_) {
    // Still away: said again after 1 minute, then 2, 4, ... up to every hour.
    spdlog::warn("broker: redis at {} still unreachable after {} s ({})", options_.url.redacted(),
                 std::chrono::duration_cast<std::chrono::seconds>(clock_.system() - since_).count(),
                 last_error_);
    next_reminder_ = std::min(next_reminder_ * 2, kLastReminder);
  }
  if ((now == LinkState::kReady) != (reported_ == LinkState::kReady)) since_ = clock_.system();
  reported_ = now;
}

boost::json::object RedisBroker::status() const {
  const LinkState state = overall();
  json::object result{{"type", "redis"},
                      {"url", options_.url.redacted()},
                      {"state", link_state_name(state)},
                      {"since", epoch_millis(since_)},
                      {"instance", instance_id_},
                      {"reconnects", commands_->reconnects() + subscriber_->reconnects()},
                      {"forwarded", forwarded_},
                      {"received", received_},
                      {"dropped", dropped_}};
  if (state != LinkState::kReady && !last_error_.empty()) result["lastError"] = last_error_;
  if (!options_.photon_core_prefix.empty()) {
    result["photonCore"] = json::object{{"prefix", options_.photon_core_prefix},
                                        {"forwarded", photon_core_forwarded_},
                                        {"received", photon_core_received_},
                                        {"dropped", photon_core_dropped_},
                                        {"invalid", photon_core_invalid_}};
  }
  return result;
}

void RedisBroker::flush(std::chrono::milliseconds grace, std::function<void()> done) {
  if (commands_->pending() == 0 || commands_->state() != LinkState::kReady || grace.count() <= 0) {
    return done();
  }
  // Polled: replies arrive on this loop, a few milliseconds apart at most.
  flush_timer_.expires_after(kFlushStep);
  flush_timer_.async_wait(
      [this, grace, done = std::move(done)](boost::system::error_code ec) mutable {
        if (ec) return;
        flush(grace - kFlushStep, std::move(done));
      });
}

void RedisBroker::forward(std::string_view channel, const boost::json::value& message) {
  if (commands_->state() != LinkState::kReady ||
      commands_->pending() >= options_.max_forward_pending ||
      commands_->buffered_bytes() >= options_.max_forward_bytes) {
    ++dropped_;
    if (!options_.photon_core_prefix.empty()) ++photon_core_dropped_;
    return;
  }
  if (!options_.photon_core_prefix.empty()) forward_to_photon_core(channel, message);
  // {"o":ORIGIN,"m":MESSAGE}, written by hand: the message is not copied into an envelope object.
  std::string envelope = "{\"o\":\"" + instance_id_ + "\",\"m\":";
  envelope += json::serialize(message);
  envelope += '}';
  std::string key = channel_prefix_ + "ch:";
  key.append(channel);
  commands_->command({"PUBLISH", std::move(key), std::move(envelope)},
                     [this](const redisReply* reply, const std::string&) {
                       if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
                         ++dropped_;
                       } else {
                         ++forwarded_;
                       }
                     });
}

void RedisBroker::on_message(std::string_view channel, std::string_view payload) {
  if (channel.size() <= channel_prefix_.size()) return;
  const std::string_view rest = channel.substr(channel_prefix_.size());
  if (rest.starts_with("ch:")) {
    boost::system::error_code ec;
    json::parse_options options;
    options.max_depth = defaults::kMaxJsonDepthLimit;  // the parser does not recurse
    json::value envelope = json::parse(payload, ec, {}, options);
    if (ec || !envelope.is_object()) return;
    const json::value* origin = envelope.get_object().if_contains("o");
    const json::value* message = envelope.get_object().if_contains("m");
    if (origin == nullptr || message == nullptr) return;
    if (origin->is_string() && origin->get_string() == instance_id_) return;  // our own echo
    ++received_;
    if (listener_ != nullptr) listener_->remote_message(rest.substr(3), *message);
  } else if (rest.starts_with("unlock:")) {
    if (listener_ != nullptr) listener_->lock_released(rest.substr(7));
  } else if (rest == "jobs") {
    // "<origin> <job id>": the job changed (or went) on another daemon; read it.
    const auto space = payload.find(' ');
    if (space == std::string_view::npos || payload.substr(0, space) == instance_id_) return;
    read_job(std::string(payload.substr(space + 1)));
  }
}

void RedisBroker::forward_to_photon_core(std::string_view channel,
                                         const boost::json::value& message) {
  const core::PhotonCoreSender sender{
      .source = options_.photon_name,
      .now_millis = epoch_millis(clock_.system()),
      .mark = photon_core_mark_,
  };
  std::string key = options_.photon_core_prefix;
  key.append(channel);
  commands_->command({"PUBLISH", std::move(key), core::photon_core_text(channel, message, sender)},
                     [this](const redisReply* reply, const std::string&) {
                       if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
                         ++photon_core_dropped_;
                       } else {
                         ++photon_core_forwarded_;
                       }
                     });
}

void RedisBroker::on_photon_core_message(std::string_view channel, std::string_view payload) {
  if (payload.size() > options_.max_photon_core_bytes) {
    ++photon_core_invalid_;
    return;
  }
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = defaults::kMaxJsonDepthLimit;  // the parser does not recurse
  json::value parsed = json::parse(payload, ec, {}, options);
  if (ec) {
    ++photon_core_invalid_;
    return;
  }
  // Published by a daemon of this photon: its subscribers here have it from the photon's own
  // channel (and the publisher's daemon must not deliver its own message back).
  if (core::has_mark_prefix(parsed, photon_core_mark_prefix_)) return;
  // Another photon's daemon: its mark (and instance id) is no business of this photon's clients.
  if (json::object* object = parsed.if_object()) object->erase("photond");
  const bool taken =
      listener_ == nullptr ||
      listener_->remote_message(channel, core::photond_message_of(channel, std::move(parsed)));
  if (taken) {
    ++photon_core_received_;
  } else {
    ++photon_core_invalid_;
  }
}

}  // namespace photon::broker
