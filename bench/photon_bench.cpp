// photon_bench: load generator that runs photond next to Redis and a bare Unix-socket echo, and
// prints round trip, fan-out, replay window, resume, lock, memory and start-time figures side by
// side as ratios.
#include "bench_support.hpp"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <initializer_list>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using namespace photon::bench;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: photon_bench --photond PATH [--redis-server PATH] [--seconds N] [--subscribers 8]\n"
    "                    [--size 128] [--workload "
    "all|roundtrip|fanout|window|resume|locks|memory|start|cluster]\n";
constexpr std::string_view kPhotonPing = "{\"type\":\"ping\",\"id\":\"1\"}\n";
constexpr std::string_view kRedisPing = "*1\r\n$4\r\nPING\r\n";
constexpr std::string_view kStampMarker = "ts:";  // payload = "ts:" + 19 digits + padding
constexpr std::size_t kStampDigits = 19;
constexpr std::size_t kMinMessageSize = kStampMarker.size() + kStampDigits + 1;
// Fan-out pacing: at most kWindow publishes in flight (sent, not yet received by every
// subscriber), written kMinBatch or more at a time; the paced pass sends one at a time.
constexpr std::uint64_t kWindow = 256;
constexpr std::uint64_t kMinBatch = 64;
constexpr int kIdleConnections = 1000;
// Lock workload: each client acquires and releases its own lock; the lease is Redis's usual PX.
constexpr int kLockClients = 4;
constexpr int kLockWarmupCycles = 500;
constexpr std::string_view kLockLeaseMs = "30000";
constexpr int kStartRuns = 10;
constexpr int kWarmupPings = 2000;
constexpr auto kReadyTimeout = 5s;
constexpr auto kDrainTimeout = 5s;
// Resume workload: channels filled to photond's default per-channel window (500 messages, within
// 4 MiB), one channel alone and kResumeChannels under one pattern (8 x 500 within the 10000 and
// 16 MiB in all), before clients come back and are replayed what they missed.
constexpr std::size_t kResumeChannelMessages = 500;
constexpr std::size_t kResumeChannelBytes = 1536 * 1024;  // keeps --size 64 KiB within the bounds
constexpr std::size_t kResumeLineOverhead = 256;          // a channel_message line's fields
constexpr int kResumeChannels = 8;
constexpr std::size_t kFillBatch = 100;

// Observations worth the reader's attention (a daemon that died, lost messages), printed last.
std::vector<std::string>& notes() {
  static std::vector<std::string> list;
  return list;
}

enum class Protocol { kPhoton, kRedis };

std::string_view ping_request(Protocol protocol) {
  return protocol == Protocol::kPhoton ? kPhotonPing : kRedisPing;
}

bool is_pong(Protocol protocol, std::string_view line) {
  return protocol == Protocol::kPhoton ? line.find("\"type\":\"pong\"") != std::string_view::npos
                                       : line == "+PONG";
}

// A server under test in its own temporary directory. Members are destroyed in reverse order,
// so the process stops before its directory is removed.
struct Daemon {
  std::string name;
  Protocol protocol;
  TempDir dir;
  std::string socket_path;
  ChildProcess process;

  Daemon(std::string daemon_name, Protocol daemon_protocol)
      : name(std::move(daemon_name)), protocol(daemon_protocol) {}
  ~Daemon() {
    if (process.has_exited()) return;  // died on its own: the workload that saw it reported it
    const std::string ended = process.stop();
    if (ended != "exit 0") notes().push_back(name + " on SIGTERM: " + ended);
  }
};

// Waits until the daemon answers a ping on a fresh connection.
void wait_until_ready(Daemon& daemon) {
  const auto deadline = Clock::now() + kReadyTimeout;
  for (;;) {
    if (daemon.process.has_exited())
      throw BenchError(daemon.name + " ended (" + daemon.process.stop() +
                       ") before answering a ping; its log:\n" +
                       file_tail(daemon.process.log_path()));
    if (Fd fd = try_connect(daemon.socket_path); fd.valid()) {
      write_all(fd.get(), ping_request(daemon.protocol));
      LineReader reader(fd.get(), 512);
      if (auto line = reader.read_line(); line && is_pong(daemon.protocol, *line)) return;
    }
    if (Clock::now() > deadline)
      throw BenchError(daemon.name + " did not answer a ping within 5 s; its log:\n" +
                       file_tail(daemon.process.log_path()));
    std::this_thread::sleep_for(100us);
  }
}

// `extra`: more flags of `photond serve` (a broker, for the cluster workload).
std::unique_ptr<Daemon> spawn_photond(const std::string& photond_path,
                                      const std::vector<std::string>& extra = {}) {
  auto daemon = std::make_unique<Daemon>("photond", Protocol::kPhoton);
  daemon->socket_path = daemon->dir.path() + "/daemons/bench.sock";
  std::vector<std::string> argv{photond_path, "serve", "bench", "--idle-timeout", "0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  daemon->process.spawn(argv, {"PHOTON_DIR=" + daemon->dir.path()},
                        daemon->dir.path() + "/photond.log");
  return daemon;
}

std::unique_ptr<Daemon> spawn_redis(const std::string& redis_path) {
  auto daemon = std::make_unique<Daemon>("redis", Protocol::kRedis);
  daemon->socket_path = daemon->dir.path() + "/redis.sock";
  daemon->process.spawn({redis_path, "--port", "0", "--unixsocket", daemon->socket_path, "--save",
                         "", "--appendonly", "no"},
                        {}, daemon->dir.path() + "/redis.log");
  return daemon;
}

// `photond_flags`: more flags of `photond serve` when `protocol` is photond's.
std::unique_ptr<Daemon> start_daemon(Protocol protocol, const std::string& path,
                                     const std::vector<std::string>& photond_flags = {}) {
  auto daemon =
      protocol == Protocol::kPhoton ? spawn_photond(path, photond_flags) : spawn_redis(path);
  wait_until_ready(*daemon);
  return daemon;
}

// ---------------------------------------------------------------------------------------------
// Workloads

std::int64_t elapsed_ns(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
}

struct LatencyFigures {
  double ops_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// One client, sequential requests: each waits for its reply before the next is sent.
LatencyFigures measure_roundtrip(const std::string& socket_path, std::string_view request,
                                 Protocol reply_protocol, bool is_echo, double seconds) {
  Fd fd = connect_to(socket_path);
  LineReader reader(fd.get());
  const std::string_view expected = request.substr(0, request.find('\n'));
  auto check = [&](std::string_view line) {
    if (is_echo ? line != expected : !is_pong(reply_protocol, line))
      throw BenchError("unexpected reply: " + std::string(line));
  };
  for (int i = 0; i < kWarmupPings; ++i) {
    write_all(fd.get(), request);
    check(reader.expect_line());
  }
  std::vector<std::int64_t> samples;
  samples.reserve(1 << 20);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  auto sent_at = start;
  while (sent_at < deadline) {
    write_all(fd.get(), request);
    const std::string_view line = reader.expect_line();
    const auto received_at = Clock::now();
    samples.push_back(elapsed_ns(sent_at, received_at));
    if (samples.size() == 1) check(line);
    sent_at = received_at;
  }
  LatencyFigures figures;
  figures.ops_per_s = double(samples.size()) * 1e9 / double(elapsed_ns(start, sent_at));
  figures.p50_us = percentile_us(samples, 0.50);
  figures.p99_us = percentile_us(samples, 0.99);
  return figures;
}

// Lets the publisher sleep while subscribers catch up: on a 2-core machine a spinning publisher
// would steal the CPU the daemon needs.
class CatchUpGate {
 public:
  // Called by subscribers after progress. The seq_cst flag pairs with the seq_cst counters, so
  // either the waiter sees the progress or the subscriber sees the waiter.
  void notify() {
    if (!waiting_.load()) return;
    { std::lock_guard lock(mutex_); }
    condition_.notify_one();
  }
  template <class Predicate>
  void wait_for(Predicate ready, std::chrono::microseconds timeout) {
    std::unique_lock lock(mutex_);
    waiting_.store(true);
    condition_.wait_for(lock, timeout, ready);
    waiting_.store(false);
  }

 private:
  std::mutex mutex_;
  std::condition_variable condition_;
  std::atomic<bool> waiting_{false};
};

// One subscriber connection, read by its own thread. The counter is atomic because the
// publisher reads it to bound the messages in flight.
struct SubscriberConnection {
  Fd fd;
  LineReader reader;
  std::atomic<std::uint64_t> received{0};
  std::int64_t last_receipt_ns = 0;
  std::vector<std::int64_t> latencies_ns;
  std::string error;
  std::thread thread;

  explicit SubscriberConnection(Fd connection) : fd(std::move(connection)), reader(fd.get()) {}
};

struct FanoutFigures {
  double deliveries_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double server_cpu_us_per_publish = 0;  // the server's CPU time (all threads) over `published`
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
};

void subscribe(Protocol protocol, SubscriberConnection& subscriber) {
  if (protocol == Protocol::kPhoton) {
    write_all(subscriber.fd.get(), R"({"type":"subscribe","id":"s","channel":"bench"})"
                                   "\n");
    const std::string_view reply = subscriber.reader.expect_line();
    if (reply.find("\"success\":true") == std::string_view::npos)
      throw BenchError("subscribe failed: " + std::string(reply));
  } else {
    write_all(subscriber.fd.get(), "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nbench\r\n");
    while (subscriber.reader.expect_line() != ":1") {  // the last line of the confirmation
    }
  }
}

void read_deliveries(SubscriberConnection& subscriber, CatchUpGate& gate) {
  try {
    while (auto line = subscriber.reader.read_line()) {
      // Redis splits a message over several RESP lines; only the payload line carries the stamp.
      const std::size_t marker = line->find(kStampMarker);
      if (marker == std::string_view::npos || line->size() < marker + kMinMessageSize) continue;
      std::int64_t stamp = 0;
      for (std::size_t i = marker + kStampMarker.size(), end = i + kStampDigits; i < end; ++i)
        stamp = stamp * 10 + ((*line)[i] - '0');
      const std::int64_t now = now_ns();
      subscriber.latencies_ns.push_back(now - stamp);
      subscriber.last_receipt_ns = now;
      subscriber.received.fetch_add(1);
      gate.notify();
    }
  } catch (const std::exception& error) {
    subscriber.error = error.what();
  }
}

// A payload of `message_size` bytes: the send time, then padding.
void append_payload(std::string& out, std::size_t message_size) {
  char stamp[kMinMessageSize + 1];
  std::snprintf(stamp, sizeof(stamp), "ts:%019lld:", static_cast<long long>(now_ns()));
  out += stamp;
  out.append(message_size - kMinMessageSize, 'x');
}

void append_publish(std::string& out, Protocol protocol, std::uint64_t sequence,
                    std::size_t message_size, std::string_view channel = "bench") {
  if (protocol == Protocol::kPhoton) {
    out += R"({"type":"publish","id":")";
    out += std::to_string(sequence);
    out += R"(","channel":")";
    out += channel;
    out += R"(","message":")";
  } else {
    out += "*3\r\n$7\r\nPUBLISH\r\n$";
    out += std::to_string(channel.size());
    out += "\r\n";
    out += channel;
    out += "\r\n$";
    out += std::to_string(message_size);
    out += "\r\n";
  }
  append_payload(out, message_size);
  out += protocol == Protocol::kPhoton ? "\"}\n" : "\r\n";
}

void check_publish_reply(Protocol protocol, std::string_view line) {
  const bool ok = protocol == Protocol::kPhoton
                      ? line.find("\"type\":\"result\"") != std::string_view::npos
                      : line.starts_with(':');
  if (!ok) throw BenchError("publish failed: " + std::string(line));
}

// 1 publisher, S subscribers each read by its own thread. The publisher keeps at most `window`
// messages in flight (published, not yet received by every subscriber), so the figures measure
// the daemon's throughput and latency, not how deep a queue the bench can build up.
// `publisher_socket`: where the publisher connects when not to `daemon` (another daemon of the
// photon, for the cluster workload).
FanoutFigures measure_fanout(const Daemon& daemon, int subscriber_count, std::size_t message_size,
                             double seconds, std::uint64_t window, std::uint64_t min_batch,
                             const std::string* publisher_socket = nullptr) {
  CatchUpGate gate;
  std::vector<std::unique_ptr<SubscriberConnection>> subscribers;
  for (int i = 0; i < subscriber_count; ++i) {
    subscribers.push_back(std::make_unique<SubscriberConnection>(connect_to(daemon.socket_path)));
    subscribe(daemon.protocol, *subscribers.back());
    subscribers.back()->latencies_ns.reserve(1 << 20);
  }
  auto min_received = [&] {
    std::uint64_t least = UINT64_MAX;
    for (auto& subscriber : subscribers) least = std::min(least, subscriber->received.load());
    return least;
  };
  auto stop_subscribers = [&] {
    for (auto& subscriber : subscribers) {
      ::shutdown(subscriber->fd.get(), SHUT_RDWR);  // ends the blocked read
      if (subscriber->thread.joinable()) subscriber->thread.join();
    }
  };

  Fd publisher = connect_to(publisher_socket != nullptr ? *publisher_socket : daemon.socket_path);
  LineReader replies(publisher.get());
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  std::string batch;
  std::int64_t start_ns = 0;
  const std::int64_t cpu_before_ns = cpu_time_ns(daemon.process.pid());
  std::int64_t cpu_after_ns = 0;
  try {  // from the first thread on, every exit path must stop the subscribers
    for (auto& subscriber : subscribers)
      subscriber->thread = std::thread([&gate, &s = *subscriber] { read_deliveries(s, gate); });
    start_ns = now_ns();
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      while (auto line = replies.try_read_line()) {
        check_publish_reply(daemon.protocol, *line);
        ++acked;
      }
      const std::uint64_t lag = sent - min_received();
      const std::uint64_t unacked = sent - acked;
      const std::uint64_t in_flight = std::max(lag, unacked);
      if (in_flight + min_batch <= window) {
        batch.clear();
        for (std::uint64_t i = in_flight; i < window; ++i)
          append_publish(batch, daemon.protocol, ++sent, message_size);
        write_all(publisher.get(), batch);
      } else if (unacked >= lag) {
        pollfd readable{publisher.get(), POLLIN, 0};
        ::poll(&readable, 1, 1);
      } else {
        gate.wait_for([&] { return sent - min_received() + min_batch <= window; }, 1000us);
      }
    }
    while (acked < sent) {
      check_publish_reply(daemon.protocol, replies.expect_line());
      ++acked;
    }
    const auto drain_deadline = Clock::now() + kDrainTimeout;
    while (min_received() < sent && Clock::now() < drain_deadline)
      gate.wait_for([&] { return min_received() >= sent; }, 1000us);
    cpu_after_ns = cpu_time_ns(daemon.process.pid());
  } catch (...) {
    stop_subscribers();
    throw;
  }
  stop_subscribers();

  FanoutFigures figures;
  figures.published = sent;
  figures.server_cpu_us_per_publish =
      sent == 0 ? std::nan("") : double(cpu_after_ns - cpu_before_ns) / 1000.0 / double(sent);
  std::vector<std::int64_t> latencies;
  std::int64_t last_receipt_ns = start_ns;
  for (auto& subscriber : subscribers) {
    if (!subscriber->error.empty())
      notes().push_back(daemon.name + " subscriber: " + subscriber->error);
    figures.delivered += subscriber->received.load();
    last_receipt_ns = std::max(last_receipt_ns, subscriber->last_receipt_ns);
    latencies.insert(latencies.end(), subscriber->latencies_ns.begin(),
                     subscriber->latencies_ns.end());
  }
  if (figures.delivered != sent * std::uint64_t(subscriber_count))
    notes().push_back(daemon.name + " fan-out: " + std::to_string(figures.delivered) + " of " +
                      std::to_string(sent * std::uint64_t(subscriber_count)) +
                      " deliveries arrived");
  figures.deliveries_per_s = double(figures.delivered) * 1e9 / double(last_receipt_ns - start_ns);
  figures.p50_us = percentile_us(latencies, 0.50);
  figures.p99_us = percentile_us(latencies, 0.99);
  return figures;
}

// A Redis command as a RESP array of bulk strings.
std::string resp_command(const std::vector<std::string_view>& words) {
  std::string out = "*" + std::to_string(words.size()) + "\r\n";
  for (std::string_view word : words) {
    out += "$" + std::to_string(word.size()) + "\r\n";
    out += word;
    out += "\r\n";
  }
  return out;
}

// Redis's single-instance lock: SET NX PX to acquire, a compare-and-delete script to release
// only while the value is still this holder's token.
constexpr std::string_view kRedisUnlockScript =
    "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

// One lock client: its own connection, its own lock name and holder.
struct LockClient {
  Fd fd;
  LineReader reader;
  std::string lock_name;
  std::string holder;
  std::vector<std::int64_t> cycle_ns;
  double measured_s = 0;
  std::string error;

  LockClient(Fd connection, int index)
      : fd(std::move(connection)),
        reader(fd.get()),
        lock_name("bench:lock:" + std::to_string(index)),
        holder("bench-" + std::to_string(index)) {}
};

// One acquire + release; throws when either is refused.
void lock_cycle(Protocol protocol, LockClient& client, std::uint64_t sequence) {
  if (protocol == Protocol::kPhoton) {
    write_all(client.fd.get(), R"({"type":"lock","id":"l","sessionId":")" + client.holder +
                                   R"(","lockName":")" + client.lock_name + R"(","lockTimeout":)" +
                                   std::string(kLockLeaseMs) + "}\n");
    if (const std::string_view reply = client.reader.expect_line();
        reply.find("\"acquired\":true") == std::string_view::npos)
      throw BenchError("lock refused: " + std::string(reply));
    write_all(client.fd.get(), R"({"type":"unlock","id":"u","sessionId":")" + client.holder +
                                   R"(","lockName":")" + client.lock_name + "\"}\n");
    if (const std::string_view reply = client.reader.expect_line();
        reply.find("\"released\":true") == std::string_view::npos)
      throw BenchError("unlock refused: " + std::string(reply));
  } else {
    const std::string token = client.holder + "-" + std::to_string(sequence);
    write_all(client.fd.get(),
              resp_command({"SET", client.lock_name, token, "NX", "PX", kLockLeaseMs}));
    if (const std::string_view reply = client.reader.expect_line(); reply != "+OK")
      throw BenchError("SET NX refused: " + std::string(reply));
    write_all(client.fd.get(),
              resp_command({"EVAL", kRedisUnlockScript, "1", client.lock_name, token}));
    if (const std::string_view reply = client.reader.expect_line(); reply != ":1")
      throw BenchError("compare-and-delete failed: " + std::string(reply));
  }
}

// Warms up, waits for the other clients, then runs cycles back to back for `seconds`.
void run_lock_client(Protocol protocol, LockClient& client, double seconds, std::latch& ready) {
  bool arrived = false;
  try {
    std::uint64_t sequence = 0;
    for (int i = 0; i < kLockWarmupCycles; ++i) lock_cycle(protocol, client, ++sequence);
    arrived = true;
    ready.arrive_and_wait();
    client.cycle_ns.reserve(1 << 20);
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(seconds);
    auto cycle_start = start;
    while (cycle_start < deadline) {
      lock_cycle(protocol, client, ++sequence);
      const auto cycle_end = Clock::now();
      client.cycle_ns.push_back(elapsed_ns(cycle_start, cycle_end));
      cycle_start = cycle_end;
    }
    client.measured_s = double(elapsed_ns(start, cycle_start)) / 1e9;
  } catch (const std::exception& error) {
    client.error = error.what();
    if (!arrived) ready.count_down();  // the others must not wait for this client
  }
}

struct LockFigures {
  double cycles_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// kLockClients clients, each acquiring and releasing its own lock in a loop: the cost of an
// uncontended acquire + release, two round trips, with several clients at once.
LockFigures measure_locks(const Daemon& daemon, double seconds) {
  std::vector<std::unique_ptr<LockClient>> clients;
  for (int i = 0; i < kLockClients; ++i)
    clients.push_back(std::make_unique<LockClient>(connect_to(daemon.socket_path), i));
  std::latch ready(kLockClients);
  std::vector<std::thread> threads;
  for (auto& client : clients)
    threads.emplace_back(
        [&, &c = *client] { run_lock_client(daemon.protocol, c, seconds, ready); });
  for (std::thread& thread : threads) thread.join();

  LockFigures figures;
  std::vector<std::int64_t> samples;
  for (auto& client : clients) {
    if (!client->error.empty())
      throw BenchError(daemon.name + " lock client " + client->holder + ": " + client->error);
    figures.cycles_per_s += double(client->cycle_ns.size()) / client->measured_s;
    samples.insert(samples.end(), client->cycle_ns.begin(), client->cycle_ns.end());
  }
  figures.p50_us = percentile_us(samples, 0.50);
  figures.p99_us = percentile_us(samples, 0.99);
  return figures;
}

struct MemoryFigures {
  long idle_kb = 0;
  long idle_anonymous_kb = 0;
  long connected_kb = 0;
  long added_kb() const { return connected_kb - idle_kb; }
};

// RSS of a freshly started daemon, then with kIdleConnections connections that each had one
// ping answered (so the daemon really accepted and set them up).
MemoryFigures measure_memory(const Daemon& daemon) {
  MemoryFigures figures;
  figures.idle_kb = status_kb(daemon.process.pid(), "VmRSS");
  figures.idle_anonymous_kb = status_kb(daemon.process.pid(), "RssAnon");
  std::vector<Fd> connections;
  connections.reserve(kIdleConnections);
  for (int i = 0; i < kIdleConnections; ++i) {
    connections.push_back(connect_to(daemon.socket_path));
    write_all(connections.back().get(), ping_request(daemon.protocol));
    LineReader reader(connections.back().get(), 256);
    if (!is_pong(daemon.protocol, reader.expect_line()))
      throw BenchError("connection " + std::to_string(i) + " got no pong");
  }
  std::this_thread::sleep_for(200ms);
  figures.connected_kb = status_kb(daemon.process.pid(), "VmRSS");
  return figures;
}

// Median time from fork/exec to the first pong, each start in a fresh directory.
double measure_start_ms(Protocol protocol, const std::string& path) {
  std::vector<std::int64_t> samples;
  for (int run = 0; run < kStartRuns; ++run) {
    const auto started = Clock::now();
    auto daemon = start_daemon(protocol, path);
    samples.push_back(elapsed_ns(started, Clock::now()));
  }
  return percentile_us(samples, 0.5) / 1000.0;
}

// Where clients come back to: the channels filled, and what a client that saw the message before
// the fill is owed.
struct ResumeTarget {
  std::string request;   // photond: subscribe with lastEventId; Redis: XREAD from that id
  std::size_t owed = 0;  // messages replayed to each client coming back
};

// The event id in a publish result (photond) or the id an XADD answered (Redis).
std::string read_published_id(const Daemon& daemon, LineReader& reader) {
  const std::string_view line = reader.expect_line();
  if (daemon.protocol == Protocol::kRedis) {
    if (!line.starts_with('$')) throw BenchError("XADD failed: " + std::string(line));
    return std::string(reader.expect_line());
  }
  check_publish_reply(daemon.protocol, line);
  constexpr std::string_view kField = R"("eventId":")";
  const std::size_t start = line.find(kField);
  if (start == std::string_view::npos) throw BenchError("no eventId in " + std::string(line));
  const std::size_t from = start + kField.size();
  return std::string(line.substr(from, line.find('"', from) - from));
}

// Publishes one marker message on the first channel (the last one the returning clients saw),
// then `per_channel` messages on each channel, round robin: what those clients missed. photond
// keeps them in its replay window; Redis gets them as entries of one stream per channel, with
// explicit ids 0-1 (the marker), 0-2, ... so that one id orders them across streams as photond's
// eventIds do.
ResumeTarget fill_channels(const Daemon& daemon, const std::string& subscription,
                           const std::vector<std::string>& channels, std::size_t per_channel,
                           std::size_t message_size) {
  Fd publisher = connect_to(daemon.socket_path);
  LineReader replies(publisher.get());
  const bool photon = daemon.protocol == Protocol::kPhoton;
  write_all(publisher.get(),
            photon ? R"({"type":"publish","id":"m","channel":")" + channels.front() +
                         R"(","message":"marker"})" + "\n"
                   : resp_command({"XADD", channels.front(), "0-1", "data", "marker"}));
  const std::string marker_id = read_published_id(daemon, replies);
  const std::size_t total = per_channel * channels.size();
  std::string batch;
  std::string payload;
  for (std::size_t sent = 0; sent < total;) {
    batch.clear();
    const std::size_t batch_end = std::min(total, sent + kFillBatch);
    for (std::size_t i = sent; i < batch_end; ++i) {
      const std::string& channel = channels[i % channels.size()];
      if (photon) {
        append_publish(batch, daemon.protocol, i, message_size, channel);
      } else {
        payload.clear();
        append_payload(payload, message_size);
        batch += resp_command({"XADD", channel, "0-" + std::to_string(i + 2), "data", payload});
      }
    }
    write_all(publisher.get(), batch);
    for (; sent < batch_end; ++sent) read_published_id(daemon, replies);
  }
  ResumeTarget target;
  target.owed = total;
  if (photon) {
    target.request = R"({"type":"subscribe","id":"r","channel":")" + subscription +
                     R"(","lastEventId":")" + marker_id + "\"}\n";
  } else {
    std::vector<std::string_view> words{"XREAD", "STREAMS"};
    words.insert(words.end(), channels.begin(), channels.end());
    words.insert(words.end(), channels.size(), marker_id);
    target.request = resp_command(words);
  }
  return target;
}

// Reads one RESP reply, however nested; counts the bulk strings that are bench payloads and
// notes when the first of them was read.
void read_resp_reply(LineReader& reader, std::size_t& payloads, std::int64_t& first_ns) {
  const std::string_view line = reader.expect_line();
  if (line.starts_with('*')) {
    const long elements = std::stol(std::string(line.substr(1)));
    for (long i = 0; i < elements; ++i) read_resp_reply(reader, payloads, first_ns);
  } else if (line.starts_with('$')) {
    if (line == "$-1") return;
    if (reader.expect_line().starts_with(kStampMarker) && payloads++ == 0) first_ns = now_ns();
  } else if (line.starts_with('-')) {
    throw BenchError("redis: " + std::string(line));
  }
}

struct ResumeSample {
  std::int64_t first_ns = 0;  // from the request written to the first replayed message read
  std::int64_t all_ns = 0;    // ... to the last
};

// One client coming back on a fresh connection: it asks for what it missed and reads all of it.
ResumeSample resume_once(const Daemon& daemon, const ResumeTarget& target) {
  Fd fd = connect_to(daemon.socket_path);
  LineReader reader(fd.get());
  std::size_t replayed = 0;
  std::int64_t first_ns = 0;
  const std::int64_t start_ns = now_ns();
  write_all(fd.get(), target.request);
  if (daemon.protocol == Protocol::kPhoton) {
    while (replayed < target.owed) {
      const std::string_view line = reader.expect_line();
      if (line.find(R"("replay":true)") != std::string_view::npos) {
        if (replayed++ == 0) first_ns = now_ns();
      } else if (line.find(R"("type":"result")") == std::string_view::npos) {
        throw BenchError("resume answered: " + std::string(line.substr(0, 200)));
      }
    }
  } else {
    read_resp_reply(reader, replayed, first_ns);
  }
  const std::int64_t end_ns = now_ns();
  if (replayed != target.owed)
    throw BenchError(daemon.name + " replayed " + std::to_string(replayed) + " of " +
                     std::to_string(target.owed) + " messages");
  return {first_ns - start_ns, end_ns - start_ns};
}

struct ResumeFigures {
  double resumes_per_s = 0;
  double replayed_per_s = 0;
  double first_p50_us = 0;
  double first_p99_us = 0;
  double all_p50_us = 0;
  double all_p99_us = 0;
};

constexpr int kResumeWarmups = 10;

// `clients` clients, each on its own thread, come back again and again for `seconds`, each time
// on a fresh connection. The rates count the whole cycle (connect, replay, close) of all clients.
ResumeFigures measure_resume(const Daemon& daemon, const ResumeTarget& target, int clients,
                             double seconds) {
  std::vector<std::vector<ResumeSample>> samples(static_cast<std::size_t>(clients));
  std::vector<std::string> errors(static_cast<std::size_t>(clients));
  std::latch ready(clients + 1);
  std::vector<std::thread> threads;
  const auto client = [&](std::size_t index) {
    bool arrived = false;
    try {
      for (int i = 0; i < kResumeWarmups; ++i) resume_once(daemon, target);
      arrived = true;
      ready.arrive_and_wait();
      const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
      while (Clock::now() < deadline) samples[index].push_back(resume_once(daemon, target));
    } catch (const std::exception& error) {
      errors[index] = error.what();
      if (!arrived) ready.count_down();
    }
  };
  for (int i = 0; i < clients; ++i) threads.emplace_back(client, std::size_t(i));
  ready.arrive_and_wait();
  const auto start = Clock::now();
  for (std::thread& thread : threads) thread.join();
  const double elapsed_s = double(elapsed_ns(start, Clock::now())) / 1e9;

  std::vector<std::int64_t> first;
  std::vector<std::int64_t> all;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (!errors[i].empty()) throw BenchError(daemon.name + " resume client: " + errors[i]);
    for (const ResumeSample& sample : samples[i]) {
      first.push_back(sample.first_ns);
      all.push_back(sample.all_ns);
    }
  }
  ResumeFigures figures;
  figures.resumes_per_s = double(all.size()) / elapsed_s;
  figures.replayed_per_s = figures.resumes_per_s * double(target.owed);
  figures.first_p50_us = percentile_us(first, 0.50);
  figures.first_p99_us = percentile_us(first, 0.99);
  figures.all_p50_us = percentile_us(all, 0.50);
  figures.all_p99_us = percentile_us(all, 0.99);
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Report

struct Row {
  std::string metric;
  std::optional<double> photond;
  std::optional<double> redis;
  std::optional<double> echo;
  int precision = 1;
};

std::string format_value(std::optional<double> value, int precision) {
  if (!value || std::isnan(*value)) return "-";
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", precision, *value);
  return text;
}

std::string format_ratio(std::optional<double> numerator, std::optional<double> denominator) {
  if (!numerator || !denominator || *denominator == 0) return "-";
  return format_value(*numerator / *denominator, 2);
}

void print_table(std::string_view title, const std::vector<Row>& rows, bool with_echo) {
  std::printf("\n%s\n", std::string(title).c_str());
  std::printf("  %-26s %12s %12s", "", "photond", "redis");
  if (with_echo) std::printf(" %12s", "echo");
  std::printf(" %14s", "photond/redis");
  if (with_echo) std::printf(" %13s", "photond/echo");
  std::printf("\n");
  for (const Row& row : rows) {
    std::printf("  %-26s %12s %12s", row.metric.c_str(),
                format_value(row.photond, row.precision).c_str(),
                format_value(row.redis, row.precision).c_str());
    if (with_echo) std::printf(" %12s", format_value(row.echo, row.precision).c_str());
    std::printf(" %14s", format_ratio(row.photond, row.redis).c_str());
    if (with_echo) std::printf(" %13s", format_ratio(row.photond, row.echo).c_str());
    std::printf("\n");
  }
}

void print_goal(std::string_view goal, bool met) {
  std::printf("  goal: %-62s %s\n", std::string(goal).c_str(), met ? "met" : "NOT met");
}

struct Options {
  std::string photond_path;
  std::string redis_path;  // empty: photond figures only
  double seconds = 3;
  int subscribers = 8;
  std::size_t message_size = 128;
  std::string workload = "all";
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage.data(), stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) throw BenchError("missing value after " + std::string(flag));
    const std::string value = argv[++i];
    if (flag == "--photond")
      options.photond_path = value;
    else if (flag == "--redis-server")
      options.redis_path = value;
    else if (flag == "--seconds")
      options.seconds = std::stod(value);
    else if (flag == "--subscribers")
      options.subscribers = std::stoi(value);
    else if (flag == "--size")
      options.message_size = std::stoul(value);
    else if (flag == "--workload")
      options.workload = value;
    else
      throw BenchError("unknown option " + std::string(flag));
  }
  if (options.photond_path.empty()) throw BenchError("--photond PATH is required");
  if (options.seconds <= 0 || options.subscribers < 1)
    throw BenchError("--seconds and --subscribers must be positive");
  if (options.message_size < kMinMessageSize)
    throw BenchError("--size must be at least " + std::to_string(kMinMessageSize));
  const std::vector<std::string> workloads{"all",   "roundtrip", "fanout", "window", "resume",
                                           "locks", "memory",    "start",  "cluster"};
  if (std::find(workloads.begin(), workloads.end(), options.workload) == workloads.end())
    throw BenchError("unknown workload " + options.workload);
  if (options.redis_path.empty()) options.redis_path = find_on_path("redis-server");
  return options;
}

void print_header(const Options& options) {
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  utsname system{};
  ::uname(&system);
  std::string cpu;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; cpu.empty() && std::getline(cpuinfo, line);)
    if (line.starts_with("model name")) cpu = line.substr(line.find(':') + 1);
  std::printf("photon_bench  %s  %u cores,%s  %s %s\n", date, std::thread::hardware_concurrency(),
              cpu.c_str(), system.sysname, system.release);
  std::printf("photond: %s\nredis:   %s\n", options.photond_path.c_str(),
              options.redis_path.empty()
                  ? "not found (photond figures only)"
                  : command_output("'" + options.redis_path + "' --version").c_str());
  std::printf("%.1f s per measurement, %d subscribers, %zu-byte messages\n", options.seconds,
              options.subscribers, options.message_size);
}

struct RoundtripFigures {
  LatencyFigures photond;
  std::optional<LatencyFigures> redis;
  LatencyFigures echo;
};

RoundtripFigures measure_roundtrips(const Options& options) {
  RoundtripFigures figures;
  {
    auto daemon = start_daemon(Protocol::kPhoton, options.photond_path);
    figures.photond = measure_roundtrip(daemon->socket_path, kPhotonPing, Protocol::kPhoton, false,
                                        options.seconds);
  }
  if (!options.redis_path.empty()) {
    auto daemon = start_daemon(Protocol::kRedis, options.redis_path);
    figures.redis = measure_roundtrip(daemon->socket_path, kRedisPing, Protocol::kRedis, false,
                                      options.seconds);
  }
  TempDir echo_dir;
  const std::string echo_socket = echo_dir.path() + "/echo.sock";
  EchoServer server(echo_socket);
  figures.echo =
      measure_roundtrip(echo_socket, kPhotonPing, Protocol::kPhoton, true, options.seconds);
  return figures;
}

void print_roundtrip(std::string_view title, const RoundtripFigures& figures, bool judge) {
  auto redis_value = [&](double LatencyFigures::*field) {
    return figures.redis ? std::optional<double>((*figures.redis).*field) : std::nullopt;
  };
  auto row = [&](std::string metric, double LatencyFigures::*field, int precision) {
    return Row{std::move(metric), figures.photond.*field, redis_value(field), figures.echo.*field,
               precision};
  };
  print_table(title,
              {row("requests/s", &LatencyFigures::ops_per_s, 0),
               row("p50 latency (us)", &LatencyFigures::p50_us, 1),
               row("p99 latency (us)", &LatencyFigures::p99_us, 1)},
              true);
  if (judge) {
    print_goal("photond p50 within 10% of the bare echo",
               figures.photond.p50_us <= 1.10 * figures.echo.p50_us);
  } else {
    std::printf("  (depends on where the scheduler puts client and server; judged on one CPU)\n");
  }
}

// Twice: as the scheduler places things, then with client and server sharing one CPU. On a VM
// a wake-up across CPUs can cost tens of µs and swamp the server's own work; on one CPU the
// figures show what the server itself costs per request.
void run_roundtrip(const Options& options) {
  print_roundtrip("round trip: one client, sequential pings", measure_roundtrips(options), false);
  RoundtripFigures pinned;
  {
    CpuPin pin;
    pinned = measure_roundtrips(options);
  }
  print_roundtrip("round trip, client and server on one CPU", pinned, true);
}

struct FanoutPasses {
  FanoutFigures loaded;  // kWindow in flight: throughput, and latency under load
  FanoutFigures paced;   // one message at a time: the latency of the delivery path alone
};

FanoutPasses measure_fanout_passes(Protocol protocol, const std::string& path,
                                   const Options& options,
                                   const std::vector<std::string>& photond_flags = {}) {
  auto daemon = start_daemon(protocol, path, photond_flags);
  FanoutPasses passes;
  passes.loaded = measure_fanout(*daemon, options.subscribers, options.message_size,
                                 options.seconds, kWindow, kMinBatch);
  passes.paced =
      measure_fanout(*daemon, options.subscribers, options.message_size, options.seconds, 1, 1);
  return passes;
}

// The rows of a fan-out table: both passes of photond, beside the same passes of `redis` if any.
std::vector<Row> fanout_rows(const FanoutPasses& photon, const FanoutPasses* redis) {
  auto row = [&](std::string metric, FanoutFigures FanoutPasses::*pass, auto FanoutFigures::*field,
                 int precision) {
    return Row{std::move(metric), double((photon.*pass).*field),
               redis ? std::optional<double>(double((redis->*pass).*field)) : std::nullopt,
               std::nullopt, precision};
  };
  const std::string in_flight = std::to_string(kWindow) + " in flight";
  return {
      row("deliveries/s, " + in_flight, &FanoutPasses::loaded, &FanoutFigures::deliveries_per_s, 0),
      row("  latency p50 (us)", &FanoutPasses::loaded, &FanoutFigures::p50_us, 1),
      row("  latency p99 (us)", &FanoutPasses::loaded, &FanoutFigures::p99_us, 1),
      row("deliveries/s, 1 in flight", &FanoutPasses::paced, &FanoutFigures::deliveries_per_s, 0),
      row("  latency p50 (us)", &FanoutPasses::paced, &FanoutFigures::p50_us, 1),
      row("  latency p99 (us)", &FanoutPasses::paced, &FanoutFigures::p99_us, 1)};
}

void run_fanout(const Options& options) {
  const FanoutPasses photon =
      measure_fanout_passes(Protocol::kPhoton, options.photond_path, options);
  std::optional<FanoutPasses> redis;
  if (!options.redis_path.empty())
    redis = measure_fanout_passes(Protocol::kRedis, options.redis_path, options);
  print_table("fan-out: 1 publisher, " + std::to_string(options.subscribers) + " subscribers, " +
                  std::to_string(options.message_size) + "-byte messages",
              fanout_rows(photon, redis ? &*redis : nullptr), false);
  if (redis) {
    print_goal("deliveries/s at least Redis's",
               photon.loaded.deliveries_per_s >= redis->loaded.deliveries_per_s);
    print_goal("p99 latency no worse than Redis's, " + std::to_string(kWindow) + " in flight",
               photon.loaded.p99_us <= redis->loaded.p99_us);
    print_goal("p99 latency no worse than Redis's, 1 in flight",
               photon.paced.p99_us <= redis->paced.p99_us);
  }
}

// The window's cost on fan-out: the fan-out workload against photond with its replay window on
// (the defaults: every publish is recorded) and with it off (--replay-messages 0 keeps nothing),
// and against Redis. photond runs in the order on, off, off, on, each on a fresh daemon, so that
// a machine getting busier or quieter during the run weighs on both alike; each figure is the
// mean of its two daemons.
void run_window(const Options& options) {
  const std::vector<std::string> window_off{"--replay-messages", "0"};
  const std::string& path = options.photond_path;
  const FanoutPasses on_first = measure_fanout_passes(Protocol::kPhoton, path, options);
  const FanoutPasses off_first =
      measure_fanout_passes(Protocol::kPhoton, path, options, window_off);
  const FanoutPasses off_second =
      measure_fanout_passes(Protocol::kPhoton, path, options, window_off);
  const FanoutPasses on_second = measure_fanout_passes(Protocol::kPhoton, path, options);
  std::optional<FanoutPasses> redis;
  if (!options.redis_path.empty())
    redis = measure_fanout_passes(Protocol::kRedis, options.redis_path, options);

  auto mean = [](const FanoutPasses& a, const FanoutPasses& b, double FanoutFigures::*field,
                 FanoutFigures FanoutPasses::*pass) {
    return ((a.*pass).*field + (b.*pass).*field) / 2;
  };
  std::printf("\nreplay window's cost on fan-out: 1 publisher, %d subscribers, %zu-byte messages\n",
              options.subscribers, options.message_size);
  std::printf("  %-26s %12s %12s %12s %9s %9s %9s\n", "", "window on", "window off", "redis",
              "on/off", "on/redis", "off/redis");
  const std::string in_flight = std::to_string(kWindow) + " in flight";
  const std::vector<
      std::tuple<std::string, FanoutFigures FanoutPasses::*, double FanoutFigures::*, int>>
      rows{{"deliveries/s, " + in_flight, &FanoutPasses::loaded, &FanoutFigures::deliveries_per_s,
            0},
           {"  latency p50 (us)", &FanoutPasses::loaded, &FanoutFigures::p50_us, 1},
           {"  latency p99 (us)", &FanoutPasses::loaded, &FanoutFigures::p99_us, 1},
           {"  server CPU/publish (us)", &FanoutPasses::loaded,
            &FanoutFigures::server_cpu_us_per_publish, 2},
           {"deliveries/s, 1 in flight", &FanoutPasses::paced, &FanoutFigures::deliveries_per_s, 0},
           {"  latency p50 (us)", &FanoutPasses::paced, &FanoutFigures::p50_us, 1},
           {"  latency p99 (us)", &FanoutPasses::paced, &FanoutFigures::p99_us, 1},
           {"  server CPU/publish (us)", &FanoutPasses::paced,
            &FanoutFigures::server_cpu_us_per_publish, 2}};
  for (const auto& [metric, pass, field, precision] : rows) {
    const double on = mean(on_first, on_second, field, pass);
    const double off = mean(off_first, off_second, field, pass);
    const double against = redis ? (*redis).*pass.*field : std::nan("");  // NaN prints "-"
    std::printf("  %-26s %12s %12s %12s %9s %9s %9s\n", metric.c_str(),
                format_value(on, precision).c_str(), format_value(off, precision).c_str(),
                format_value(against, precision).c_str(), format_ratio(on, off).c_str(),
                format_ratio(on, against).c_str(), format_ratio(off, against).c_str());
  }
  std::printf(
      "  (mean of two daemons each, run on, off, off, on; %s: deliveries/s on %.0f and %.0f,\n"
      "   off %.0f and %.0f; server CPU/publish (us) on %.2f and %.2f, off %.2f and %.2f.\n"
      "   server CPU/publish: the server's CPU time, all threads, over the messages published,\n"
      "   which other work on the machine disturbs less than it does deliveries/s)\n",
      in_flight.c_str(), on_first.loaded.deliveries_per_s, on_second.loaded.deliveries_per_s,
      off_first.loaded.deliveries_per_s, off_second.loaded.deliveries_per_s,
      on_first.loaded.server_cpu_us_per_publish, on_second.loaded.server_cpu_us_per_publish,
      off_first.loaded.server_cpu_us_per_publish, off_second.loaded.server_cpu_us_per_publish);
}

// How many messages each channel of the resume workload gets: photond's default per-channel
// window, or fewer for large messages, so that every one is still kept when clients come back.
std::size_t resume_channel_messages(std::size_t message_size) {
  return std::min(
      kResumeChannelMessages,
      std::max<std::size_t>(1, kResumeChannelBytes / (message_size + kResumeLineOverhead)));
}

struct ResumePasses {
  ResumeFigures one;      // one channel, one client at a time
  ResumeFigures herd;     // one channel, S clients at once
  ResumeFigures pattern;  // kResumeChannels channels under one pattern, one client at a time
};

ResumePasses measure_resume_passes(Protocol protocol, const std::string& path,
                                   const Options& options) {
  auto daemon = start_daemon(protocol, path);
  const std::size_t per_channel = resume_channel_messages(options.message_size);
  const ResumeTarget one =
      fill_channels(*daemon, "resume", {"resume"}, per_channel, options.message_size);
  std::vector<std::string> channels;
  for (int i = 0; i < kResumeChannels; ++i) channels.push_back("resume:" + std::to_string(i));
  const ResumeTarget pattern =
      fill_channels(*daemon, "resume:*", channels, per_channel, options.message_size);
  ResumePasses passes;
  passes.one = measure_resume(*daemon, one, 1, options.seconds);
  passes.herd = measure_resume(*daemon, one, options.subscribers, options.seconds);
  passes.pattern = measure_resume(*daemon, pattern, 1, options.seconds);
  return passes;
}

// Clients coming back with the last event id they saw, owed every message kept since: how fast
// photond replays from its window, against Redis reading the same messages from streams.
void run_resume(const Options& options) {
  const ResumePasses photon =
      measure_resume_passes(Protocol::kPhoton, options.photond_path, options);
  std::optional<ResumePasses> redis;
  if (!options.redis_path.empty())
    redis = measure_resume_passes(Protocol::kRedis, options.redis_path, options);
  const std::size_t per_channel = resume_channel_messages(options.message_size);
  auto table = [&](const std::string& title, ResumeFigures ResumePasses::*pass, std::size_t owed) {
    auto row = [&](std::string metric, double ResumeFigures::*field, int precision) {
      return Row{std::move(metric), photon.*pass.*field,
                 redis ? std::optional<double>((*redis).*pass.*field) : std::nullopt, std::nullopt,
                 precision};
    };
    const std::string all = "  all " + std::to_string(owed);
    print_table(title,
                {row("messages replayed/s", &ResumeFigures::replayed_per_s, 0),
                 row("resumes/s", &ResumeFigures::resumes_per_s, 0),
                 row("  first message p50 (us)", &ResumeFigures::first_p50_us, 1),
                 row("  first message p99 (us)", &ResumeFigures::first_p99_us, 1),
                 row(all + " p50 (us)", &ResumeFigures::all_p50_us, 1),
                 row(all + " p99 (us)", &ResumeFigures::all_p99_us, 1)},
                false);
  };
  const std::string size = std::to_string(options.message_size) + "-byte messages";
  table("resume: one client at a time coming back to 1 channel, owed " +
            std::to_string(per_channel) + " " + size,
        &ResumePasses::one, per_channel);
  table("resume: " + std::to_string(options.subscribers) +
            " clients at once coming back to 1 channel, each owed " + std::to_string(per_channel),
        &ResumePasses::herd, per_channel);
  table("resume: one client at a time coming back to resume:* over " +
            std::to_string(kResumeChannels) + " channels, owed " +
            std::to_string(per_channel * kResumeChannels),
        &ResumePasses::pattern, per_channel * kResumeChannels);
  std::printf(
      "  (photond: subscribe with lastEventId, then every message since, one line each, while\n"
      "   subscribed from then on; redis: XREAD STREAMS from the same id over one stream per\n"
      "   channel holding the same messages, one reply holding them all, nothing subscribed;\n"
      "   Redis has no pattern over streams, so it is told the %d streams' names, and does not\n"
      "   merge them in publish order. Each resume on a fresh connection, timed from the "
      "request.)\n",
      kResumeChannels);
}

// Waits until a daemon started with --broker says its broker is connected.
void wait_until_broker_connected(Daemon& daemon) {
  const auto deadline = Clock::now() + kReadyTimeout;
  for (;;) {
    Fd fd = connect_to(daemon.socket_path);
    write_all(fd.get(), R"({"type":"status","id":"s"})"
                        "\n");
    LineReader reader(fd.get());
    if (reader.expect_line().find(R"("state":"connected")") != std::string_view::npos) return;
    if (Clock::now() > deadline)
      throw BenchError("photond's broker did not connect within 5 s; its log:\n" +
                       file_tail(daemon.process.log_path()));
    std::this_thread::sleep_for(10ms);
  }
}

// Cross-daemon fan-out: two photond "hosts" of one photon joined through one Redis; the publisher
// on the first, the subscribers on the second, so every message goes photond → Redis → photond.
// Compared with the same fan-out on that Redis directly (what a client of Redis alone gets).
void run_cluster(const Options& options) {
  if (options.redis_path.empty()) throw BenchError("the cluster workload needs redis-server");
  auto redis = start_daemon(Protocol::kRedis, options.redis_path);
  const std::vector<std::string> broker{"--broker", "unix://" + redis->socket_path};
  auto first = spawn_photond(options.photond_path, broker);
  auto second = spawn_photond(options.photond_path, broker);
  for (Daemon* daemon : {first.get(), second.get()}) {
    wait_until_ready(*daemon);
    wait_until_broker_connected(*daemon);
  }
  FanoutPasses photon;
  photon.loaded = measure_fanout(*second, options.subscribers, options.message_size,
                                 options.seconds, kWindow, kMinBatch, &first->socket_path);
  photon.paced = measure_fanout(*second, options.subscribers, options.message_size, options.seconds,
                                1, 1, &first->socket_path);
  FanoutPasses direct;
  direct.loaded = measure_fanout(*redis, options.subscribers, options.message_size, options.seconds,
                                 kWindow, kMinBatch);
  direct.paced =
      measure_fanout(*redis, options.subscribers, options.message_size, options.seconds, 1, 1);
  print_table("cluster fan-out: publisher on daemon A, " + std::to_string(options.subscribers) +
                  " subscribers on daemon B, via one Redis, " +
                  std::to_string(options.message_size) + "-byte messages",
              fanout_rows(photon, &direct), false);
  std::printf(
      "  (photond: A → Redis → B, each message once through Redis; redis: the same fan-out\n"
      "   with the subscribers on that Redis directly)\n");
}

void run_locks(const Options& options) {
  const LockFigures photon =
      measure_locks(*start_daemon(Protocol::kPhoton, options.photond_path), options.seconds);
  std::optional<LockFigures> redis;
  if (!options.redis_path.empty())
    redis = measure_locks(*start_daemon(Protocol::kRedis, options.redis_path), options.seconds);
  auto row = [&](std::string metric, double LockFigures::*field, int precision) {
    return Row{std::move(metric), photon.*field,
               redis ? std::optional<double>((*redis).*field) : std::nullopt, std::nullopt,
               precision};
  };
  print_table("locks: " + std::to_string(kLockClients) +
                  " clients, each acquiring and releasing its own lock",
              {row("cycles/s", &LockFigures::cycles_per_s, 0),
               row("p50 per cycle (us)", &LockFigures::p50_us, 1),
               row("p99 per cycle (us)", &LockFigures::p99_us, 1)},
              false);
  std::printf("  (photond: lock + unlock; redis: SET NX PX + compare-and-delete EVAL)\n");
  if (redis) print_goal("cycles/s at least Redis's", photon.cycles_per_s >= redis->cycles_per_s);
}

void run_memory(const Options& options) {
  auto photond = start_daemon(Protocol::kPhoton, options.photond_path);
  const MemoryFigures photon = measure_memory(*photond);
  photond.reset();
  std::optional<MemoryFigures> redis;
  if (!options.redis_path.empty())
    redis = measure_memory(*start_daemon(Protocol::kRedis, options.redis_path));
  auto row = [&](std::string metric, auto figure) {
    auto mb = [](long kb) { return double(kb) / 1024.0; };
    return Row{std::move(metric), mb(figure(photon)),
               redis ? std::optional<double>(mb(figure(*redis))) : std::nullopt, std::nullopt, 2};
  };
  print_table(
      "memory: resident set (MB)",
      {row("idle (VmRSS)", [](const MemoryFigures& m) { return m.idle_kb; }),
       row("  of which own (RssAnon)", [](const MemoryFigures& m) { return m.idle_anonymous_kb; }),
       row("with " + std::to_string(kIdleConnections) + " idle connections",
           [](const MemoryFigures& m) { return m.connected_kb; }),
       row("added by the connections", [](const MemoryFigures& m) { return m.added_kb(); })},
      false);
  print_goal("idle RSS under 4 MB", photon.idle_kb < 4 * 1024);
  print_goal("1000 idle connections add under 8 MB", photon.added_kb() < 8 * 1024);
}

void run_start(const Options& options) {
  const double photon = measure_start_ms(Protocol::kPhoton, options.photond_path);
  std::optional<double> redis;
  if (!options.redis_path.empty()) redis = measure_start_ms(Protocol::kRedis, options.redis_path);
  print_table("start: fork/exec to first pong, median of " + std::to_string(kStartRuns) + " (ms)",
              {{"start", photon, redis, std::nullopt, 2}}, false);
  print_goal("start under 10 ms", photon < 10.0);
}

// Room for the memory workload's connections, in the bench and in the daemons it starts.
void raise_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < rlim_t(kIdleConnections + 100))
    notes().push_back("RLIMIT_NOFILE is only " + std::to_string(limit.rlim_cur) +
                      "; the memory workload may fail");
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "photon_bench: %s\n%s", error.what(), kUsage.data());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  raise_file_limit();
  print_header(options);

  const std::vector<std::pair<std::string, void (*)(const Options&)>> workloads{
      {"roundtrip", run_roundtrip}, {"fanout", run_fanout},  {"window", run_window},
      {"resume", run_resume},       {"locks", run_locks},    {"memory", run_memory},
      {"start", run_start},         {"cluster", run_cluster}};
  int failures = 0;
  for (const auto& [name, run] : workloads) {
    if (options.workload != "all" && options.workload != name) continue;
    try {
      run(options);
    } catch (const std::exception& error) {
      std::printf("\n%s: FAILED: %s\n", name.c_str(), error.what());
      ++failures;
    }
    std::fflush(stdout);
  }
  if (!notes().empty()) {
    std::printf("\nnotes:\n");
    for (const std::string& note : notes()) std::printf("  - %s\n", note.c_str());
  }
  return failures == 0 ? 0 : 1;
}
