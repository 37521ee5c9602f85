// The Redis broker: channel envelopes, lock scripts, job claims, shared job definitions and
// records.
#include "broker/redis_broker.hpp"

#include "locks/lock_table.hpp"
#include "protocol/error_messages.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <random>
#include <set>
#include <utility>

namespace photon::broker {
namespace json = boost::json;
namespace {

// Acquire: a free lock is taken with a new fencing token; the holder's own lock is extended;
// another's is reported with its remaining lease. The lock's name goes into the photon's index of
// locks, scored by expiry, which list_locks reads. A free lock is refused (3) while the index
// counts the photon's limit of locks: entries of locks that expired are pruned first, so only held
// locks count (looked at: entries whose expiry is at most a minute ahead of this daemon's clock,
// the hosts' clocks may differ that much; oldest first, at most 1000 per call).
// A new token is the greatest of: the counter plus one (tokens increase while Redis keeps it);
// Redis's clock in microseconds (so a Redis that lost the counter, whether restarted empty,
// flushed or replaced by a replica that lagged, still starts above every token issued before:
// those were at most its clock then); and the daemon's floor plus one (what it handed out or
// saw, which holds when Redis's clock went back). The counter keeps the token. A token above
// the largest a JavaScript number holds exactly is refused (4), and nothing is taken.
// KEYS: lock, fence counter, index. ARGV: holder, lease ms, now ms, daemon, floor, name, max
// locks, lock key prefix, largest token. Numbers go to redis.call as numbers: Redis writes them
// with 17 digits, exactly (Lua's own tostring would round them to 14).
constexpr const char* kAcquireScript = R"lua(
local h = redis.call('HGET', KEYS[1], 'holder')
if not h then
  local limit = tonumber(ARGV[7])
  if redis.call('ZCARD', KEYS[3]) >= limit then
    local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[3]) + 60000, 'LIMIT', 0, 1000)
    for _, name in ipairs(due) do
      if redis.call('EXISTS', ARGV[8] .. name) == 0 then redis.call('ZREM', KEYS[3], name) end
    end
    if redis.call('ZCARD', KEYS[3]) >= limit then return {3, '', 0, 0, 0} end
  end
  local clock = redis.call('TIME')
  local t = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
  local counter = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if counter + 1 > t then t = counter + 1 end
  if tonumber(ARGV[5]) + 1 > t then t = tonumber(ARGV[5]) + 1 end
  if t > tonumber(ARGV[9]) then return {4, '', 0, 0, 0} end
  redis.call('SET', KEYS[2], t)
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', t, 'acquired', ARGV[3], 'daemon', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[6])
  return {1, ARGV[1], t, tonumber(ARGV[3]), tonumber(ARGV[2])}
end
local t = tonumber(redis.call('HGET', KEYS[1], 'token'))
local a = tonumber(redis.call('HGET', KEYS[1], 'acquired'))
if h == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[6])
  return {2, h, t, a, tonumber(ARGV[2])}
end
return {0, h, t, a, redis.call('PTTL', KEYS[1])}
)lua";

// Release by the holder only; waiters on every daemon hear of it. KEYS: lock, index. ARGV:
// holder, notification channel, name.
constexpr const char* kReleaseScript = R"lua(
local h = redis.call('HGET', KEYS[1], 'holder')
if not h then return {0, ''} end
if h ~= ARGV[1] then return {2, h} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return {1, h}
)lua";

// A job's slot is claimed by moving the job's last fired slot forward: once per slot, and never
// for a slot older than one already fired (a daemon waking from a long pause cannot run again a
// slot the others ran, however long ago). Slots are epoch milliseconds, exact in Lua's numbers.
// An exclusive claim (overlap "skip") also takes the job's running key, a lease the winner holds
// while its run lasts; the winner of a slot whose job runs somewhere skips it. Returns 0: lost,
// 1: won, 2: won while the job runs. A job removed meanwhile (this daemon has not heard yet) is
// lost, and leaves no marker behind. KEYS: fired, running, definitions. ARGV: slot, daemon,
// exclusive, lease ms, job id.
constexpr const char* kClaimScript = R"lua(
if redis.call('HEXISTS', KEYS[3], ARGV[5]) == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'slot') or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'slot', ARGV[1], 'daemon', ARGV[2])
if ARGV[3] == '1' and not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[4]) then return 2 end
return 1
)lua";

// The holder of a job's running key renews its lease; 0 when it is no longer the holder (the
// lease ran out while Redis was away). KEYS: running. ARGV: daemon, lease ms.
constexpr const char* kRenewRunScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)lua";

// The holder's run ended: the job's running key goes, if it is still the holder's.
constexpr const char* kEndRunScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
)lua";

// A job's definition, written only when it differs from the stored one, so that a daemon
// declaring its jobs at every start changes nothing that is already there. A job new to Redis
// gets its record too, from the writer's view (a new job's is empty; after Redis lost its data,
// what the writer knew). KEYS: definitions, record. ARGV: id, definition, notice channel, notice,
// createdAt, runCount, lastRun (empty: none), lastStatus, lastError.
constexpr const char* kPutJobScript = R"lua(
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not old then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'createdAt', ARGV[5], 'runCount', ARGV[6], 'lastStatus', ARGV[8],
             'lastError', ARGV[9])
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'lastRun', ARGV[7]) end
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
)lua";

// A job removed, with its record, slot marker and history. Its running key stays: a run of it may
// still be going on somewhere, and holds it until it ends. KEYS: definitions, record, fired, runs.
// ARGV: id, notice channel, notice.
constexpr const char* kDeleteJobScript = R"lua(
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
)lua";

// What runs did to a job's record, applied only while the job exists: a run ending on one daemon
// can neither bring back a job removed on another nor undo a newer definition. The count is
// added to (runs ending at once on two daemons both count); lastRun only moves forward.
// KEYS: definitions, record. ARGV: id, runs ended, lastRun (empty: unchanged), notice channel,
// notice, then field/value pairs (lastStatus, lastError).
constexpr const char* kUpdateRecordScript = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[2], 'runCount', ARGV[2]) end
if ARGV[3] ~= '' and tonumber(ARGV[3]) > tonumber(redis.call('HGET', KEYS[2], 'lastRun') or '0') then
  redis.call('HSET', KEYS[2], 'lastRun', ARGV[3])
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
)lua";

// A finished run added to its job's history (the newest first, at most ARGV[3]), unless the job
// was removed meanwhile: its history went with it. KEYS: definitions, runs. ARGV: id, run, keep.
constexpr const char* kPushRunScript = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
)lua";

// One job as {definition, createdAt, runCount, lastRun, lastStatus, lastError}; nothing when it is
// gone. KEYS: definitions, record. ARGV: id.
constexpr const char* kReadJobScript = R"lua(
local d = redis.call('HGET', KEYS[1], ARGV[1])
if not d then return false end
local r = redis.call('HMGET', KEYS[2], 'createdAt', 'runCount', 'lastRun', 'lastStatus', 'lastError')
return {d, r[1], r[2], r[3], r[4], r[5]}
)lua";

// Every job, as one consistent view: {id, definition, createdAt, runCount, lastRun, lastStatus,
// lastError} each. KEYS: definitions. ARGV: the record key prefix.
constexpr const char* kReadJobsScript = R"lua(
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local r = redis.call('HMGET', ARGV[1] .. all[i], 'createdAt', 'runCount', 'lastRun', 'lastStatus',
                       'lastError')
  out[#out + 1] = {all[i], all[i + 1], r[1], r[2], r[3], r[4], r[5]}
end
return out
)lua";

constexpr const char* kQueryScript = R"lua(
local v = redis.call('HMGET', KEYS[1], 'holder', 'token', 'acquired')
local ttl = redis.call('PTTL', KEYS[1])
if not v[1] or ttl <= 0 then return false end
return {KEYS[1], v[1], tonumber(v[2]), tonumber(v[3]), ttl}
)lua";

// The photon's locks, bounded, from its index (never a SCAN of a Redis that may be shared with
// millions of other keys); entries whose lease has passed are pruned first. KEYS: index. ARGV:
// prune before (ms), limit, lock key prefix.
constexpr const char* kListScript = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do
  local k = ARGV[3] .. n
  local v = redis.pcall('HMGET', k, 'holder', 'token', 'acquired')
  local ttl = redis.call('PTTL', k)
  if type(v) == 'table' and v[1] and ttl > 0 then
    out[#out + 1] = {k, v[1], tonumber(v[2]), tonumber(v[3]), ttl}
  end
end
return out
)lua";

// The identity of the Redis data set: made by the first daemon that finds none, so a daemon that
// reconnects and finds another knows Redis lost its data (a restart without persistence). KEYS:
// epoch. ARGV: a new epoch.
constexpr const char* kEpochScript = R"lua(
local e = redis.call('GET', KEYS[1])
if not e then
  redis.call('SET', KEYS[1], ARGV[1])
  e = ARGV[1]
end
return e
)lua";

constexpr std::chrono::seconds kFirstReminder{60};
constexpr std::chrono::seconds kLastReminder{3600};
constexpr std::chrono::milliseconds kFlushStep{5};
// A daemon that dies mid-run holds its job for this long at most; a live one renews it.
constexpr std::chrono::milliseconds kRunLease{30'000};
constexpr std::chrono::milliseconds kRunLeaseRenewal{10'000};

std::string random_instance_id() {
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

std::string_view text_of(const redisReply* reply) {
  return reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
                 reply->type == REDIS_REPLY_ERROR
             ? std::string_view(reply->str, reply->len)
             : std::string_view();
}

std::int64_t integer_of(const redisReply* reply) {
  return reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
}

// Why `reply` is not what a script returns: the transport's error, or Redis's.
std::optional<std::string> failure(const redisReply* reply, const std::string& error) {
  if (reply == nullptr) return error;
  if (reply->type == REDIS_REPLY_ERROR) return "redis: " + std::string(text_of(reply));
  return std::nullopt;
}

// {key, holder, token, acquired, ttl} as the query and list scripts return it.
std::optional<SharedLock> lock_of(const redisReply* row, std::size_t prefix_length,
                                  std::int64_t now) {
  if (row->type != REDIS_REPLY_ARRAY || row->elements < 5) return std::nullopt;
  const std::string_view key = text_of(row->element[0]);
  if (key.size() < prefix_length) return std::nullopt;
  return SharedLock{std::string(key.substr(prefix_length)), std::string(text_of(row->element[1])),
                    integer_of(row->element[3]), now + integer_of(row->element[4]),
                    static_cast<std::uint64_t>(integer_of(row->element[2]))};
}

json::value millis_or_null(const std::optional<core::EpochMillis>& millis) {
  return millis ? json::value(*millis) : json::value(nullptr);
}

// A job's definition as stored in photon:NAME:jobs: what schedule (or a declaration) says, and
// nothing its runs change, so that equal definitions are equal strings.
std::string definition_json(const core::JobSpec& spec) {
  return json::serialize(json::object{{"id", spec.id},
                                      {"method", spec.method},
                                      {"args", spec.args},
                                      {"cron", spec.cron},
                                      {"timezone", spec.timezone},
                                      {"catchUp", core::to_string(spec.catch_up)},
                                      {"overlap", core::to_string(spec.overlap)},
                                      {"createdBy", spec.created_by},
                                      {"declared", spec.declared}});
}

// A definition as definition_json wrote it; nothing when it is not one (written by something else).
std::optional<core::JobState> parse_definition(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const json::object& object = value.get_object();
  auto string = [&](const char* key) {
    const json::value* found = object.if_contains(key);
    return found != nullptr && found->is_string() ? std::string(found->get_string())
                                                  : std::string();
  };
  core::JobState job;
  job.spec.id = string("id");
  job.spec.method = string("method");
  job.spec.cron = string("cron");
  if (job.spec.id.empty() || job.spec.cron.empty()) return std::nullopt;
  if (const json::value* args = object.if_contains("args"); args != nullptr && args->is_object()) {
    job.spec.args = args->get_object();
  }
  job.spec.timezone = string("timezone");
  job.spec.catch_up = core::parse_catch_up(string("catchUp")).value_or(core::CatchUp::kLatest);
  job.spec.overlap = core::parse_overlap(string("overlap")).value_or(core::Overlap::kSkip);
  job.spec.created_by = string("createdBy");
  const json::value* declared = object.if_contains("declared");
  job.spec.declared = declared != nullptr && declared->is_bool() && declared->get_bool();
  return job;
}

std::optional<std::int64_t> integer_in(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_STRING) return std::nullopt;
  std::int64_t value = 0;
  const std::string_view text = text_of(reply);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A job as the read scripts return it, from `row->element[first]` on: definition, createdAt,
// runCount, lastRun, lastStatus, lastError (record fields may be missing).
std::optional<core::JobState> job_of(const redisReply* row, std::size_t first) {
  if (row->type != REDIS_REPLY_ARRAY || row->elements < first + 6) return std::nullopt;
  redisReply* const* field = row->element + first;
  auto job = parse_definition(text_of(field[0]));
  if (!job) return std::nullopt;
  job->created_at = integer_in(field[1]).value_or(0);
  job->run_count =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, integer_in(field[2]).value_or(0)));
  job->last_run = integer_in(field[3]);
  job->last_status = core::parse_run_status(text_of(field[4]));
  job->last_error = std::string(text_of(field[5]));
  return job;
}

}  // namespace

RedisBroker::RedisBroker(boost::asio::io_context& loop, const Clock& clock,
                         RedisBrokerOptions options)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      prefix_("photon:" + options_.photon_name + ":"),
      // Pub/sub ignores the database number: without it in the names, deployments of one photon
      // on databases 0 and 1 of a Redis (production and staging) would hear each other.
      channel_prefix_(options_.url.db == 0 ? prefix_
                                           : "photon:" + options_.photon_name + "@" +
                                                 std::to_string(options_.url.db) + ":"),
      instance_id_(random_instance_id()),
      since_(clock.system()),
      renew_timer_(loop),
      flush_timer_(loop) {
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
        // One pattern carries everything: channel messages, lock releases, job changes.
        subscriber_->psubscribe(
            channel_prefix_ + "*",
            [this](std::string_view channel, std::string_view payload) {
              on_message(channel, payload);
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
    return;
  }
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
    // As deep as any daemon may accept (--max-json-depth goes up to 10000); the parser does not
    // recurse.
    json::parse_options options;
    options.max_depth = 10'000;
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

void RedisBroker::note_local_write(const std::string& id) {
  if (reads_in_flight_ > 0) local_writes_[id] = ++local_write_count_;
}

bool RedisBroker::written_here_since(const std::string& id, std::uint64_t read_sent_at) const {
  const auto it = local_writes_.find(id);
  return it != local_writes_.end() && it->second > read_sent_at;
}

void RedisBroker::read_done() {
  // With no read in flight no answer can be stale: the marks are needed no longer.
  if (--reads_in_flight_ == 0) local_writes_.clear();
}

void RedisBroker::read_job(const std::string& id) {
  ++reads_in_flight_;
  const std::uint64_t sent_at = local_write_count_;
  commands_->command({"EVAL", kReadJobScript, "2", prefix_ + "jobs", record_key(id), id},
                     [this, id, sent_at](const redisReply* reply, const std::string&) {
                       // Written here after this read was sent: Redis ran the read first, so
                       // its answer predates this daemon's own newer write; dropped.
                       const bool stale = written_here_since(id, sent_at);
                       read_done();
                       if (reply == nullptr || scheduler_ == nullptr) return;
                       // Read again: the new read comes after the write, and still brings what
                       // other daemons changed (a run count, say).
                       if (stale) return read_job(id);
                       if (reply->type == REDIS_REPLY_NIL) {
                         scheduler_->forget(id);
                       } else if (auto job = job_of(reply, 0)) {
                         scheduler_->adopt(std::move(*job));
                       }
                       if (listener_ != nullptr) listener_->shared_state_changed();
                     });
}

void RedisBroker::acquire(const std::string& name, const std::string& holder,
                          std::chrono::milliseconds lease, std::uint64_t above,
                          std::function<void(SharedLockResult)> done) {
  const std::int64_t now = epoch_millis(clock_.system());
  commands_->command(
      {"EVAL", kAcquireScript, "3", prefix_ + "lock:" + name, prefix_ + "fence", prefix_ + "locks",
       holder, std::to_string(lease.count()), std::to_string(now), instance_id_,
       std::to_string(above), name, std::to_string(options_.max_locks),
       prefix_ + "lock:", std::to_string(core::kMaxFencingToken)},
      [this, name, done = std::move(done)](const redisReply* reply, const std::string& error) {
        SharedLockResult result;
        if (auto why = failure(reply, error)) {
          result.error = *why;
          return done(std::move(result));
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 5) {
          result.error = "redis: unexpected reply to the lock script";
          return done(std::move(result));
        }
        const std::int64_t code = integer_of(reply->element[0]);
        if (code == 3) {
          result.outcome = SharedLockOutcome::kLimitReached;
          result.error = protocol::describe(
              {RefusalCode::kTooManyLocks, {std::to_string(options_.max_locks)}});
          return done(std::move(result));
        }
        if (code == 4) {
          result.outcome = SharedLockOutcome::kNoToken;
          result.error = protocol::describe({RefusalCode::kTokensExhausted, {}});
          return done(std::move(result));
        }
        result.outcome = code == 1   ? SharedLockOutcome::kAcquired
                         : code == 2 ? SharedLockOutcome::kExtended
                                     : SharedLockOutcome::kRefused;
        result.lock =
            SharedLock{name, std::string(text_of(reply->element[1])), integer_of(reply->element[3]),
                       epoch_millis(clock_.system()) + integer_of(reply->element[4]),
                       static_cast<std::uint64_t>(integer_of(reply->element[2]))};
        done(std::move(result));
      });
}

void RedisBroker::release(const std::string& name, const std::string& holder,
                          std::function<void(SharedReleaseResult)> done) {
  commands_->command({"EVAL", kReleaseScript, "2", prefix_ + "lock:" + name, prefix_ + "locks",
                      holder, channel_prefix_ + "unlock:" + name, name},
                     [done = std::move(done)](const redisReply* reply, const std::string& error) {
                       SharedReleaseResult result;
                       if (auto why = failure(reply, error)) {
                         result.error = *why;
                         return done(std::move(result));
                       }
                       if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
                         result.error = "redis: unexpected reply to the unlock script";
                         return done(std::move(result));
                       }
                       const std::int64_t code = integer_of(reply->element[0]);
                       result.outcome = code == 1   ? SharedReleaseOutcome::kReleased
                                        : code == 2 ? SharedReleaseOutcome::kHeldByOther
                                                    : SharedReleaseOutcome::kNotHeld;
                       result.holder = std::string(text_of(reply->element[1]));
                       done(std::move(result));
                     });
}

void RedisBroker::query(const std::string& name,
                        std::function<void(std::optional<SharedLock>, std::string)> done) {
  commands_->command(
      {"EVAL", kQueryScript, "1", prefix_ + "lock:" + name},
      [this, done = std::move(done)](const redisReply* reply, const std::string& error) {
        if (auto why = failure(reply, error)) return done(std::nullopt, *why);
        if (reply->type == REDIS_REPLY_NIL) return done(std::nullopt, {});
        done(lock_of(reply, prefix_.size() + 5, epoch_millis(clock_.system())), {});
      });
}

void RedisBroker::list(std::size_t limit,
                       std::function<void(std::vector<SharedLock>, std::string)> done) {
  commands_->command(
      {"EVAL", kListScript, "1", prefix_ + "locks",
       // Pruned a minute late, so that hosts' clocks may differ that much; PTTL decides.
       std::to_string(epoch_millis(clock_.system()) - 60'000), std::to_string(limit),
       prefix_ + "lock:"},
      [this, done = std::move(done)](const redisReply* reply, const std::string& error) {
        std::vector<SharedLock> locks;
        if (auto why = failure(reply, error)) return done(std::move(locks), *why);
        const std::int64_t now = epoch_millis(clock_.system());
        if (reply->type == REDIS_REPLY_ARRAY) {
          for (std::size_t i = 0; i < reply->elements; ++i) {
            if (auto lock = lock_of(reply->element[i], prefix_.size() + 5, now))
              locks.push_back(std::move(*lock));
          }
        }
        std::sort(locks.begin(), locks.end(),
                  [](const SharedLock& a, const SharedLock& b) { return a.name < b.name; });
        done(std::move(locks), {});
      });
}

void RedisBroker::claim(const std::string& job_id, core::EpochMillis slot, bool exclusive,
                        std::function<void(core::ClaimOutcome)> done) {
  commands_->command({"EVAL", kClaimScript, "3", prefix_ + "fired:" + job_id, running_key(job_id),
                      prefix_ + "jobs", std::to_string(slot), instance_id_, exclusive ? "1" : "0",
                      std::to_string(kRunLease.count()), job_id},
                     [this, job_id, exclusive, done = std::move(done)](const redisReply* reply,
                                                                       const std::string&) {
                       // Unreachable or refused: not ours (the slot runs once or not at all).
                       const std::int64_t code = reply != nullptr ? integer_of(reply) : 0;
                       // No answer: Redis may have run the claim and given this daemon the job's
                       // running key, which nothing here would free; freed on reconnect.
                       if (reply == nullptr && exclusive) running_keys_to_free_.insert(job_id);
                       if (code == 1 && exclusive) {
                         exclusive_runs_.insert(job_id);
                         renew_runs_later();
                       }
                       done(code == 1   ? core::ClaimOutcome::kWon
                            : code == 2 ? core::ClaimOutcome::kWonWhileRunning
                                        : core::ClaimOutcome::kLost);
                     });
}

void RedisBroker::end_exclusive_run(const std::string& job_id) {
  exclusive_runs_.erase(job_id);
  // Unanswered (Redis away): freed when it is back (or by the lease, whichever comes first).
  commands_->command({"EVAL", kEndRunScript, "1", running_key(job_id), instance_id_},
                     [this, job_id](const redisReply* reply, const std::string&) {
                       if (reply == nullptr) running_keys_to_free_.insert(job_id);
                     });
}

void RedisBroker::renew_runs_later() {
  if (renewing_ || exclusive_runs_.empty()) return;
  renewing_ = true;
  renew_timer_.expires_after(kRunLeaseRenewal);
  renew_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    renewing_ = false;
    renew_runs();
    renew_runs_later();
  });
}

void RedisBroker::renew_runs() {
  for (const std::string& id : exclusive_runs_) {
    commands_->command(
        {"EVAL", kRenewRunScript, "1", running_key(id), instance_id_,
         std::to_string(kRunLease.count())},
        [this, id](const redisReply* reply, const std::string&) {
          // Only a "not the holder" answer means the hold is gone; an error (a failover's
          // READONLY, LOADING) or no answer says nothing, and the next renewal tries again.
          const bool lost =
              reply != nullptr && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0;
          if (!lost || exclusive_runs_.erase(id) == 0) return;
          spdlog::warn(
              "broker: job {} is still running here, but its hold on it in redis ended "
              "(redis away longer than {} s?): another daemon may start it meanwhile",
              id, std::chrono::duration_cast<std::chrono::seconds>(kRunLease).count());
        });
  }
}

void RedisBroker::save_job(const core::JobState& job) { write_job(job.spec.id, job); }

void RedisBroker::delete_job(const std::string& id) { write_job(id, std::nullopt); }

void RedisBroker::write_job(const std::string& id, std::optional<core::JobState> job) {
  note_local_write(id);
  if (commands_->state() != LinkState::kReady) {
    pending_jobs_.insert_or_assign(id, std::move(job));
    return;
  }
  if (syncing_) recent_job_writes_.insert(id);
  send_job_write(id, std::move(job));
}

void RedisBroker::send_job_write(const std::string& id, std::optional<core::JobState> job) {
  std::vector<std::string> command;
  if (job) {
    command = {"EVAL",
               kPutJobScript,
               "2",
               prefix_ + "jobs",
               record_key(id),
               id,
               definition_json(job->spec),
               channel_prefix_ + "jobs",
               job_notice(id),
               std::to_string(job->created_at),
               std::to_string(job->run_count),
               job->last_run ? std::to_string(*job->last_run) : std::string(),
               job->last_status ? std::string(core::to_string(*job->last_status)) : "",
               job->last_error};
  } else {
    command = {"EVAL",
               kDeleteJobScript,
               "4",
               prefix_ + "jobs",
               record_key(id),
               prefix_ + "fired:" + id,
               prefix_ + "runs:" + id,
               id,
               channel_prefix_ + "jobs",
               job_notice(id)};
  }
  commands_->command(std::move(command),
                     [this, id, job = std::move(job)](const redisReply* reply, const std::string&) {
                       // Lost with the connection or refused (a failover's READONLY drops the
                       // connection too): written again when Redis is back, unless a newer write
                       // waits.
                       if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
                         if (reply != nullptr) {
                           spdlog::warn(
                               "broker: redis refused to write job {} ({}); written again "
                               "when the connection to redis is made again",
                               id, text_of(reply));
                         }
                         pending_jobs_.emplace(id, job);
                       }
                     });
}

void RedisBroker::update_record(const core::JobState& job, const core::RecordUpdate& update) {
  if (commands_->state() != LinkState::kReady) {
    core::RecordUpdate& pending = pending_records_[job.spec.id];
    pending.runs_ended += update.runs_ended;
    if (update.last_run && (!pending.last_run || *pending.last_run < *update.last_run)) {
      pending.last_run = update.last_run;
    }
    if (update.last_status) pending.last_status = update.last_status;
    if (update.last_error) pending.last_error = update.last_error;
    return;
  }
  send_record_update(job.spec.id, update);
  // The record as every daemon now has it (their runs count too).
  read_job(job.spec.id);
}

void RedisBroker::send_record_update(const std::string& id, const core::RecordUpdate& update) {
  std::vector<std::string> command{
      "EVAL",
      kUpdateRecordScript,
      "2",
      prefix_ + "jobs",
      record_key(id),
      id,
      std::to_string(update.runs_ended),
      update.last_run ? std::to_string(*update.last_run) : std::string(),
      channel_prefix_ + "jobs",
      job_notice(id)};
  if (update.last_status) {
    command.insert(command.end(),
                   {"lastStatus", std::string(core::to_string(*update.last_status))});
  }
  if (update.last_error) command.insert(command.end(), {"lastError", *update.last_error});
  // At most once: an update whose answer was lost may have been applied, so it is not repeated.
  commands_->command(std::move(command), [](const redisReply*, const std::string&) {});
}

void RedisBroker::save_run(const core::JobRun& run) {
  // A run is shared once it has ended; one running is seen on the daemon that runs it.
  if (run.status == core::RunStatus::kRunning || commands_->state() != LinkState::kReady) return;
  json::object entry{{"runId", run.run_id},
                     {"trigger", core::to_string(run.trigger)},
                     {"scheduledFor", run.scheduled_for},
                     {"startedAt", run.started_at},
                     {"endedAt", millis_or_null(run.ended_at)},
                     {"durationMs", run.ended_at ? json::value(*run.ended_at - run.started_at)
                                                 : json::value(nullptr)},
                     {"status", core::to_string(run.status)},
                     {"error", run.error},
                     {"interrupted", run.interrupted},
                     {"foundAt", millis_or_null(run.found_at)},
                     {"daemon", instance_id_}};
  commands_->command({"EVAL", kPushRunScript, "2", prefix_ + "jobs", prefix_ + "runs:" + run.job_id,
                      run.job_id, json::serialize(entry), std::to_string(options_.history_per_job)},
                     [](const redisReply*, const std::string&) {});
}

void RedisBroker::job_history(const std::string& job_id, std::size_t limit,
                              std::function<void(boost::json::array, std::string)> done) {
  const std::size_t count = std::min(limit, options_.history_per_job);
  if (count == 0) {
    return boost::asio::post(loop_, [done = std::move(done)] { done({}, {}); });
  }
  commands_->command(
      {"LRANGE", prefix_ + "runs:" + job_id, "0", std::to_string(count - 1)},
      [done = std::move(done), count](const redisReply* reply, const std::string& error) {
        json::array runs;
        if (auto why = failure(reply, error)) return done(std::move(runs), *why);
        for (std::size_t i = 0;
             reply->type == REDIS_REPLY_ARRAY && i < reply->elements && runs.size() < count; ++i) {
          boost::system::error_code ec;
          json::value run = json::parse(text_of(reply->element[i]), ec);
          if (!ec && run.is_object()) runs.push_back(std::move(run));
        }
        done(std::move(runs), {});
      });
}

void RedisBroker::sync_jobs() {
  // Holds on running jobs first: an outage shorter than their lease keeps them.
  renew_runs();
  // Running keys this daemon may hold for no run (a claim or an end of run got no answer): freed,
  // if they are still its own.
  for (const std::string& id : std::exchange(running_keys_to_free_, {})) {
    if (!exclusive_runs_.contains(id)) {
      commands_->command({"EVAL", kEndRunScript, "1", running_key(id), instance_id_},
                         [](const redisReply*, const std::string&) {});
    }
  }
  commands_->command({"EVAL", kEpochScript, "1", prefix_ + "epoch", random_instance_id()},
                     [this](const redisReply* reply, const std::string&) {
                       if (reply == nullptr || reply->type != REDIS_REPLY_STRING) return;
                       const std::string epoch(text_of(reply));
                       data_lost_ = !epoch_.empty() && epoch != epoch_;
                       if (data_lost_) {
                         spdlog::warn(
                             "broker: redis at {} lost its data (restarted without persistence?); "
                             "writing this daemon's jobs back",
                             options_.url.redacted());
                       }
                       epoch_ = epoch;
                     });
  // Jobs written from here on are kept even if the answer below lacks them (it may have been read
  // before they were written).
  recent_job_writes_.clear();
  syncing_ = true;
  // What was written here while Redis was away goes first, in that order: definitions (each wins
  // over what others wrote meanwhile, as if it had been written last), then the records, which
  // change only jobs that still exist (a job removed elsewhere meanwhile stays removed).
  auto pending = std::move(pending_jobs_);
  pending_jobs_.clear();
  for (auto& [id, job] : pending) {
    recent_job_writes_.insert(id);
    send_job_write(id, std::move(job));
  }
  auto records = std::move(pending_records_);
  pending_records_.clear();
  for (const auto& [id, update] : records) send_record_update(id, update);
  ++reads_in_flight_;
  const std::uint64_t sent_at = local_write_count_;
  commands_->command(
      {"EVAL", kReadJobsScript, "1", prefix_ + "jobs", prefix_ + "job:"},
      [this, sent_at](const redisReply* reply, const std::string&) {
        struct ReadDone {
          RedisBroker* broker;
          ~ReadDone() { broker->read_done(); }
        } read_done_at_exit{this};
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || scheduler_ == nullptr) return;
        std::set<std::string> shared;
        for (std::size_t i = 0; i < reply->elements; ++i) {
          const redisReply* row = reply->element[i];
          if (row->type != REDIS_REPLY_ARRAY || row->elements == 0) continue;
          std::string id(text_of(row->element[0]));
          // Written here since the read was sent: this daemon's own version is the newer one.
          const bool newer_here = written_here_since(id, sent_at);
          shared.insert(std::move(id));
          if (newer_here) continue;
          if (auto job = job_of(row, 1)) scheduler_->adopt(std::move(*job));
        }
        // Jobs the others removed while this daemon was away go; the photon's own are written back,
        // and all of them when Redis lost its data (nobody removed them then).
        std::vector<std::string> gone;
        for (const core::JobState* job : scheduler_->jobs()) {
          if (shared.contains(job->spec.id) || recent_job_writes_.contains(job->spec.id) ||
              pending_jobs_.contains(job->spec.id)) {
            continue;
          }
          if (job->spec.declared || data_lost_) {
            save_job(*job);
          } else {
            gone.push_back(job->spec.id);
          }
        }
        for (const std::string& id : gone) scheduler_->forget(id);
        recent_job_writes_.clear();  // needed only until this answer
        syncing_ = false;
        if (listener_ != nullptr) listener_->shared_state_changed();
      });
}

}  // namespace photon::broker
