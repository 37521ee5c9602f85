// Daemon start-up, the event loop's lifetime, and orderly shutdown.
#include "daemon/daemon.hpp"

#include "broker/redis_broker.hpp"
#include "common/descriptor_reserve.hpp"
#include "common/memory_release.hpp"
#include "common/paths.hpp"
#include "common/private_dir.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/log_file.hpp"
#include "daemon/log_redaction.hpp"
#include "daemon/service_manager.hpp"
#include "daemon/stored_jobs.hpp"
#include "locks/token_mark.hpp"
#include "store/token_file.hpp"
#include "ui/ui_service.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <optional>
#include <system_error>

namespace photon::daemon {
namespace asio = boost::asio;

namespace {

constexpr std::size_t kLogFileBytes = 10u << 20;
constexpr std::size_t kLogFilesKept = 3;
constexpr std::chrono::seconds kMethodStopMargin{3};
constexpr std::chrono::milliseconds kBrokerFlushGrace{500};
// A test clock's move passes through at most this many deadlines one by one (a job every second
// over a day is 86,400), and gives up on a deadline found due again after this many steps at the
// same time.
constexpr std::size_t kMaxClockSteps = 200'000;
constexpr std::size_t kMaxDueAgain = 8;
// How soon after a large free the heap is trimmed: long enough to take a burst of frees (many
// slow consumers cut at once) in one malloc_trim, and short enough to give memory back at once.
constexpr std::chrono::milliseconds kMemoryReleaseDelay{200};
// Descriptors held back for the tz database: it opens one directory or file at a time.
constexpr std::size_t kReservedDescriptors = 2;

// The entry of a file of PhotonPaths in the daemons directory ("svc.sock").
std::string entry(const std::filesystem::path& file) { return file.filename().string(); }

// Opens $PHOTON_DIR/daemons, creating it 0700, and refuses one that another user could have
// prepared (docs/security.md).
PrivateDir open_daemons_dir(const std::filesystem::path& path) {
  try {
    return PrivateDir::open_owned(path);
  } catch (const UntrustedPathError& error) {
    throw StartupError(1, std::string("refusing to run: ") + error.what());
  } catch (const std::system_error& error) {
    throw StartupError(1, error.what());
  }
}

void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

void set_up_logging(const DaemonOptions& options, const PrivateDir& dir, const PhotonPaths& paths) {
  // The secrets known at start; the UI token joins them when it is made.
  if (options.webhook) {
    for (const auto& [scheme, secret] : options.webhook->options.secrets) add_log_secret(secret);
  }
  if (options.broker) add_log_secret(options.broker->password);
  std::vector<spdlog::sink_ptr> sinks;
  try {
    sinks.push_back(
        std::make_shared<LogFileSink>(dir, entry(paths.log_file), kLogFileBytes, kLogFilesKept));
  } catch (const std::exception& error) {
    throw StartupError(1, error.what());
  }
  if (options.log_to_stderr)
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_st>());
  // Every line of every level goes through the redacting sink, whoever logs it.
  auto logger = std::make_shared<spdlog::logger>("photond",
                                                 std::make_shared<RedactingSink>(std::move(sinks)));
  logger->set_level(options.log_level);
  // Log lines are rare (start, stop, refusals, slow consumers): flush each so none is lost.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

// Replaces entry `name` of `dir` with `text`, readable by the owner only, never half-written.
void write_private_file(const PrivateDir& dir, const std::string& name, const std::string& text) {
  if (auto error = dir.replace_file(name, text, false)) throw StartupError(1, *error);
}

}  // namespace

// The running daemon: owns the loop and everything on it.
class Daemon::Impl final : public DaemonControl, public net::PeerHandler, public net::HttpHandler {
 public:
  Impl(const DaemonOptions& options, const Clock& clock, const PrivateDir& dir,
       const PhotonPaths& paths, std::uint64_t token_mark, std::unique_ptr<StoredJobs> jobs,
       std::optional<int> inherited_listener, ManualClock* test_clock)
      : options_(options),
        dir_(dir),
        paths_(paths),
        inherited_listener_(inherited_listener),
        clock_(clock),
        test_clock_(test_clock),
        jobs_(std::move(jobs)),
        tokens_(token_mark,
                [this](std::uint64_t mark) {
                  return store::save_token_mark(dir_, entry(paths_.token_file), mark);
                }),
        broker_tokens_(make_broker_tokens(token_mark)),
        methods_(make_host()),
        broker_(make_broker()),
        services_(service_options(options), clock_, tokens_, methods_.get(),
                  broker_ ? static_cast<core::JobPersistence*>(broker_.get()) : jobs_.get()),
        dispatcher_({.max_json_depth = options.max_json_depth,
                     .max_replay_bytes = options.server_limits.output.hard_bytes / 2},
                    services_, *this),
        signals_(io_, SIGINT, SIGTERM),
        idle_timer_(io_),
        watchdog_timer_(io_),
        lock_timer_(io_),
        shutdown_timer_(io_),
        memory_release_timer_(io_),
        server_(io_, *this, clock_, options.server_limits) {
    // After a large queue drains or is dropped, the heap's free pages go back to the system once
    // the loop gets to this timer (common/memory_release.hpp).
    set_memory_release_scheduler([this] {
      memory_release_timer_.expires_after(kMemoryReleaseDelay);
      memory_release_timer_.async_wait([](boost::system::error_code ec) {
        if (ec) return;
        const std::size_t freed = release_freed_memory();
        spdlog::debug("gave free heap memory back after {} bytes of queues drained", freed);
      });
    });
    if (test_clock_ != nullptr) server_.follow_manual_clock();
    if (options.webhook) make_webhook_endpoint(*options.webhook);
    if (options.ui) make_ui_listener(*options.ui);
    if (broker_) {
      services_.set_broker(*broker_, *broker_tokens_);
      services_.scheduler().set_claims(broker_.get());
      broker_->attach_scheduler(services_.scheduler());
    }
  }

  ~Impl() override { set_memory_release_scheduler(nullptr); }

  void flush_jobs() { jobs_->flush(); }

  // Calls still running once the loop has stopped (methods that ignored cancellation).
  std::size_t stuck_calls() const { return methods_ ? methods_->stats().running : 0; }

  void listen() {
    if (inherited_listener_) {
      server_.adopt(*inherited_listener_);
    } else {
      server_.listen(dir_, entry(paths_.socket));
    }
    if (!http_) return;
    const WebhookSettings& webhook = *options_.webhook;
    try {
      http_->listen(webhook.bind, webhook.port);
    } catch (const boost::system::system_error& error) {
      remove_socket_file();  // nothing is left behind
      throw StartupError(1, "webhook endpoint on " + webhook.bind.to_string() + ":" +
                                std::to_string(webhook.port) + ": " + error.code().message());
    }
    spdlog::info("webhooks on {} (authentication: {})", webhook_url(),
                 core::webhook_scheme_name(webhook.options.scheme));
  }

  // Listens for browsers and writes NAME.ui (URL and token) for `photonctl ui`. A file left by a
  // daemon that died is removed when this one has no listener.
  void listen_ui() {
    dir_.remove(entry(paths_.ui_redirect_file));  // names an old token
    if (!ui_http_) {
      dir_.remove(entry(paths_.ui_file));
      return;
    }
    try {
      ui_http_->listen(asio::ip::make_address_v4("127.0.0.1"), options_.ui->port);
    } catch (const boost::system::system_error& error) {
      remove_socket_file();
      throw StartupError(1, "ui listener on 127.0.0.1:" + std::to_string(options_.ui->port) + ": " +
                                error.code().message());
    }
    ui_->set_port(ui_http_->local_endpoint().port());
    try {
      write_private_file(
          dir_, entry(paths_.ui_file),
          boost::json::serialize(boost::json::object{{"url", ui_url()},
                                                     {"port", ui_http_->local_endpoint().port()},
                                                     {"token", ui_token_},
                                                     {"pid", ::getpid()}}) +
              "\n");
    } catch (const StartupError&) {
      remove_socket_file();
      throw;
    }
    spdlog::info("ui on {} (token in {})", ui_url(), paths_.ui_file.string());
  }

  // Removes the socket file, unless systemd made it: a socket-activated daemon leaves the path
  // to systemd, which keeps listening there and starts the daemon again at the next connect.
  void remove_socket_file() {
    if (inherited_listener_) return;
    dir_.remove(entry(paths_.socket));
  }

  void remove_ui_file() {
    if (!ui_http_) return;
    dir_.remove(entry(paths_.ui_file));
    dir_.remove(entry(paths_.ui_redirect_file));
  }

  // net::HttpHandler: one HTTP request to the webhook endpoint.
  void handle(net::HttpRequest request, net::HttpRespond respond) override {
    core::WebhookRequest webhook{request.id, std::move(request.method), std::move(request.target),
                                 std::move(request.headers), std::move(request.body)};
    webhooks_->handle(std::move(webhook),
                      [respond = std::move(respond)](core::WebhookResponse response) {
                        respond(net::HttpResponse{response.status, std::move(response.headers),
                                                  std::move(response.body)});
                      });
  }

  boost::json::object extra_status() const override {
    boost::json::object extra;
    // Started by systemd's socket: the socket outlives the daemon, and a connect starts it again.
    if (inherited_listener_) extra["socketActivated"] = true;
    if (ui_http_) {
      extra["ui"] = boost::json::object{{"url", ui_url()}, {"streams", ui_->open_streams()}};
    }
    if (!http_) return extra;
    const WebhookSettings& webhook = *options_.webhook;
    boost::json::array methods;
    if (methods_) {
      for (const core::MethodInfo& method : methods_->methods()) {
        if (!webhooks_->callable(method.name)) continue;
        methods.push_back(boost::json::object{
            {"name", method.name},
            {"auth", core::webhook_scheme_name(webhooks_->scheme_for(method.name))}});
      }
    }
    extra["webhook"] =
        boost::json::object{{"url", webhook_url()},
                            {"auth", core::webhook_scheme_name(webhook.options.scheme)},
                            {"methods", std::move(methods)},
                            {"running", webhooks_->running()}};
    return extra;
  }

  // The persistent channels' messages kept by earlier runs, into the window; from now on their
  // messages are written to the store. Throws StartupError when the store cannot be opened.
  void restore_channels() {
    if (options_.persist.empty()) return;
    store::JobStore* store = jobs_->open_now();
    if (store == nullptr) {
      throw StartupError(1, "--persist: " + jobs_->unavailable().value_or("no database"));
    }
    std::vector<KeptMessage> kept;
    std::vector<std::uint64_t> gone;  // no longer persistent, or past the age bound
    const std::int64_t now = epoch_millis(clock_.system());
    try {
      for (store::EventRecord& event : store->load_events()) {
        const bool fresh =
            options_.replay_age.count() == 0 || now - event.at_ms <= options_.replay_age.count();
        if (fresh && services_.persistent(event.channel)) {
          kept.push_back({.event_id = std::move(event.event_id),
                          .channel = std::move(event.channel),
                          .message_json = std::move(event.message_json),
                          .at_ms = event.at_ms});
        } else {
          gone.push_back(event.seq);
        }
      }
      store->delete_events(gone);
    } catch (const store::StoreError& error) {
      throw StartupError(1, error.what());
    }
    services_.restore(kept);
    // The writer thread hears of each batch; the publishers waiting for it hear on the loop.
    store->set_batch_listener([this](std::uint64_t done, bool written) {
      asio::post(io_, [this, done, written] { services_.writes_done(done, written); });
    });
    channel_store_ = std::make_unique<StoredChannels>(*store);
    services_.set_channel_store(*channel_store_);
    std::string patterns;
    for (const std::string& pattern : options_.persist) {
      patterns += (patterns.empty() ? "" : ", ") + pattern;
    }
    spdlog::info("persistent channels {}: {} messages kept from earlier runs", patterns,
                 kept.size());
  }

  // Jobs as the store kept them, then the photon's own; throws StartupError for a bad declaration.
  void load_jobs() {
    restore_channels();
    // Shared jobs come from Redis once connected; the local store is not theirs.
    if (broker_) {
      try {
        services_.scheduler().declare(options_.declared_jobs);
      } catch (const core::CronError& error) {
        throw StartupError(2, error.what());
      }
      return;
    }
    try {
      services_.scheduler().restore(jobs_->load_jobs(),
                                    jobs_->load_runs(store::JobStore::kDefaultHistoryPerJob),
                                    jobs_->last_run_id());
    } catch (const store::StoreError& error) {
      throw StartupError(1, error.what());
    }
    try {
      services_.scheduler().declare(options_.declared_jobs);
    } catch (const core::CronError& error) {
      throw StartupError(2, error.what());
    }
  }

  void run() {
    if (broker_) broker_->start();
    server_.start();
    if (http_) http_->start();
    if (ui_http_) ui_http_->start();
    // The first tick catches up slots missed while the daemon was down.
    asio::post(io_, [this] { dispatcher_.on_timer(); });
    signals_.async_wait([this](boost::system::error_code ec, int signal) {
      if (ec) return;
      spdlog::info("received {}; shutting down", ::strsignal(signal));
      begin_shutdown();
    });
    arm_idle_timer();
    if (const auto interval = watchdog_interval()) arm_watchdog(*interval);
    io_.run();
  }

  void request_shutdown() override {
    spdlog::info("shutdown requested by a client");
    // Not from inside the request's handler: shutting down closes connections, and the handler's
    // own connection is still in the middle of dispatching its input.
    asio::post(io_, [this] { begin_shutdown(); });
  }

  TransportCounters transport_counters() const override {
    return {server_.dropped_slow_consumers() + (ui_ ? ui_->dropped_slow_consumers() : 0),
            server_.connections_refused(), server_.accept_pauses()};
  }

  void wake_at(std::optional<std::chrono::steady_clock::time_point> when) override {
    // Once stopping, connections closing during teardown must not touch the timers.
    if (stopping_) return;
    if (!when) {
      if (lock_timer_armed_) lock_timer_.cancel();
      lock_timer_armed_ = false;
      return;
    }
    // On a test clock no real time counts: deadlines are checked when a test moves the clock.
    if (test_clock_ != nullptr) return;
    if (lock_timer_armed_ && wake_for_ == *when) return;
    lock_timer_armed_ = true;
    wake_for_ = *when;
    // The loop's timer waits for the daemon's clock to reach `when` (the system's steady clock
    // in a running daemon); expire_due() checks the time itself, so an early or late wake-up is
    // harmless.
    lock_timer_.expires_after(*when - clock_.steady());
    lock_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      lock_timer_armed_ = false;
      dispatcher_.on_timer();
    });
  }

  void on_open(net::Peer& peer) override {
    idle_timer_.cancel();
    idle_deadline_.reset();
    dispatcher_.on_open(peer);
  }

  bool has_test_clock() const override { return test_clock_ != nullptr; }

  void move_test_clock(const ClockMove& move) override {
    if (stopping_ || test_clock_ == nullptr) return;
    // The controller's own connection cleared the idle count; it does not keep the daemon busy.
    if (!idle_deadline_) arm_idle_timer();
    if (move.set_wall) {
      test_clock_->set_wall_clock(*move.set_wall);
      do_what_is_due();
    }
    // Time passes deadline by deadline, as it would with the loop awake: what falls due earlier
    // happens first and at its own time (a wait that ends before a lease does is refused, a cron
    // slot inside the move runs at its slot). A deadline that stays due cannot spin the loop: after
    // a few steps that find it due again, or past kMaxClockSteps, the rest of the move is one step.
    std::chrono::steady_clock::duration remaining = move.advance;
    std::size_t due_again = 0;
    for (std::size_t steps = 0; steps < kMaxClockSteps; ++steps) {
      const auto next = services_.next_deadline();
      if (!next) break;
      const auto step = std::max(*next - clock_.steady(), std::chrono::steady_clock::duration(0));
      if (step > remaining) break;
      due_again = step.count() == 0 ? due_again + 1 : 0;
      if (due_again > kMaxDueAgain) break;
      test_clock_->advance(step);
      remaining -= step;
      do_what_is_due();
    }
    test_clock_->advance(remaining);
    do_what_is_due();
    // Not from inside the request's handler: an idle shutdown closes its connection.
    asio::post(io_, [this] { check_idle(); });
  }

  // After the test clock moved: everything timed by it that is due now.
  void do_what_is_due() {
    dispatcher_.on_timer();
    if (methods_) methods_->check_deadlines();
    server_.check_deadlines();
    if (ui_) ui_->check_output_deadlines();
  }

  // The clock may have passed a deadline: the services do what is due, and the idle timeout
  // fires if its time has come.
  void check_deadlines() {
    if (stopping_) return;
    dispatcher_.on_timer();
    check_idle();
  }
  bool stopping() const { return stopping_; }
  asio::io_context& loop() { return io_; }
  void on_line(net::Peer& peer, std::string_view line) override { dispatcher_.on_line(peer, line); }
  void on_close(net::Peer& peer) override {
    dispatcher_.on_close(peer);
    arm_idle_timer();
  }
  std::string refusal_line(net::TransportRefusal reason, std::uint64_t value) const override {
    return dispatcher_.refusal_line(reason, value);
  }

 private:
  void make_webhook_endpoint(const WebhookSettings& settings) {
    core::WebhookOptions options = settings.options;
    options.photon_name = options_.photon_name;
    // Every scheme in use needs its secret; found now, not at the first request.
    auto check = [&](core::WebhookScheme scheme, const std::string& who) {
      if (scheme == core::WebhookScheme::kNone) return;
      // libcrypto is loaded on first use (webhooks/crypto_library.hpp): loaded now, so that a
      // missing or broken one stops the start instead of failing every request.
      try {
        core::hmac_sha256("photond", "start");
      } catch (const std::exception& error) {
        throw StartupError(1, who + " uses " + std::string(core::webhook_scheme_name(scheme)) +
                                  " authentication, but " + error.what());
      }
      if (auto secret = options.secrets.find(scheme); secret != options.secrets.end()) {
        if (auto problem = core::webhook_secret_problem(scheme, secret->second)) {
          throw StartupError(2, who + ": the " + std::string(core::webhook_scheme_name(scheme)) +
                                    " secret is unusable: " + *problem);
        }
        return;
      }
      throw StartupError(2, who + " uses " + std::string(core::webhook_scheme_name(scheme)) +
                                " authentication but no secret is set: set " +
                                std::string(core::kWebhookSecretVariable) + " or " +
                                core::webhook_secret_variable(scheme));
    };
    check(options.scheme, "the webhook endpoint");
    if (methods_) {
      for (const core::MethodInfo& method : methods_->methods()) {
        if (method.webhook_auth.empty()) continue;
        auto scheme = core::webhook_scheme_from_name(method.webhook_auth);
        // A misspelt scheme must not fall back to a weaker default.
        if (!scheme) {
          throw StartupError(2, "method " + method.name + ": unknown webhook_auth \"" +
                                    method.webhook_auth +
                                    "\" (none, secret, github, stripe or standard)");
        }
        check(*scheme, "method " + method.name);
      }
    }
    webhooks_ = std::make_unique<core::WebhookService>(std::move(options), clock_, methods_.get(),
                                                       services_.publisher());
    // A method without authentication on an address others can reach would be anyone's to call.
    if (!settings.bind.is_loopback() && methods_) {
      for (const core::MethodInfo& method : methods_->methods()) {
        if (webhooks_->callable(method.name) &&
            webhooks_->scheme_for(method.name) == core::WebhookScheme::kNone) {
          throw StartupError(2, "refusing to serve webhooks on " + settings.bind.to_string() +
                                    ": method " + method.name + " has no authentication");
        }
      }
    }
    http_ = std::make_unique<net::HttpServer>(io_, *this, settings.limits);
  }

  void make_ui_listener(const UiSettings& settings) {
    ui_token_ = ui::generate_token();
    add_log_secret(ui_token_);
    ui::UiOptions options;
    options.token = ui_token_;
    options.allowed_origins = settings.allowed_origins;
    options.channel_token = settings.channel_token;
    options.persist = options_.persist;
    if (!settings.channel_token.empty()) add_log_secret(settings.channel_token);
    options.photon_name = options_.photon_name;
    options.streams.max_message_bytes = options_.server_limits.max_line_bytes;
    options.streams.output = options_.server_limits.output;
    options.streams.pause_reading_bytes = options_.server_limits.pause_reading_bytes;
    ui_ = std::make_unique<ui::UiService>(io_, *this, clock_, services_.replay_window(),
                                          services_.event_ids(), std::move(options));
    // Only /channels takes a body (a publish): as large as a request line may be, when served.
    net::HttpLimits limits = settings.limits;
    if (!settings.channel_token.empty())
      limits.max_body_bytes = options_.server_limits.max_line_bytes;
    ui_http_ = std::make_unique<net::HttpServer>(io_, *ui_, limits);
  }

  std::string ui_url() const {
    return "http://127.0.0.1:" + std::to_string(ui_http_->local_endpoint().port()) + "/";
  }

  std::string webhook_url() const {
    const auto endpoint = http_->local_endpoint();
    const std::string host = endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]"
                                                        : endpoint.address().to_string();
    return "http://" + host + ":" + std::to_string(endpoint.port()) + "/webhook/";
  }

  static ServiceOptions service_options(const DaemonOptions& options) {
    return {.photon_name = options.photon_name,
            .persist = options.persist,
            .max_subscriptions = options.max_subscriptions,
            .max_total_subscriptions = options.max_total_subscriptions,
            .replay_messages = options.replay_messages,
            .replay_bytes = options.replay_bytes,
            .replay_channel_messages = options.replay_channel_messages,
            .replay_channel_bytes = options.replay_channel_bytes,
            .replay_age = options.replay_age,
            .lock_limits = {.max_locks = options.max_locks},
            .prompt_timeout = options.prompt_timeout,
            .missed_after = options.missed_after};
  }

  // With a broker, Redis issues the tokens and this mark covers the ones handed out here, saved
  // on a thread of its own (each grant waits for its save; the loop never waits for the disk).
  // The local table's allocator is idle then: the token file has one writer in each mode.
  std::unique_ptr<core::TokenMark> make_broker_tokens(std::uint64_t token_mark) {
    if (!options_.broker) return nullptr;
    token_writer_ = std::make_unique<asio::thread_pool>(1);
    return std::make_unique<core::TokenMark>(
        token_mark,
        [this](std::uint64_t mark) {
          return store::save_token_mark(dir_, entry(paths_.token_file), mark);
        },
        [this](std::function<void()> work, std::function<void()> then) {
          asio::post(*token_writer_, [this, work = std::move(work), then = std::move(then)] {
            work();
            asio::post(io_, then);
          });
        });
  }

  std::unique_ptr<broker::RedisBroker> make_broker() {
    if (!options_.broker) return nullptr;
    return std::make_unique<broker::RedisBroker>(
        io_, clock_,
        broker::RedisBrokerOptions{.url = *options_.broker,
                                   .photon_name = options_.photon_name,
                                   .max_locks = options_.max_locks,
                                   .photon_core_prefix = options_.photon_core_prefix,
                                   .max_photon_core_bytes = options_.server_limits.max_line_bytes});
  }

  std::unique_ptr<core::MethodHost> make_host() {
    if (!options_.make_host) return nullptr;
    HostEnvironment environment{io_, clock_, paths_};
    return options_.make_host(environment);
  }

  // Idle means no client is connected (every subscription and waiter lives on a connection), no
  // lock is held, no method runs (a caller may have left one running), no job is scheduled (it
  // could not fire in a daemon that has exited) and no webhook endpoint waits for callers.
  bool idle() {
    return dispatcher_.open_clients() == 0 && services_.locks().held() == 0 &&
           (!methods_ || methods_->stats().running == 0) && services_.scheduler().size() == 0 &&
           !http_ && !ui_http_;
  }

  // Keep-alives for systemd's watchdog (WatchdogSec=), sent from the loop: a loop stuck in a
  // handler misses them and systemd restarts the daemon.
  void arm_watchdog(std::chrono::microseconds interval) {
    if (stopping_) return;
    notify_watchdog();
    watchdog_timer_.expires_after(interval);
    watchdog_timer_.async_wait([this, interval](boost::system::error_code ec) {
      if (!ec) arm_watchdog(interval);
    });
  }

  // Counts from the last disconnect, on the daemon's clock; when the timeout passes with other
  // work still going on (a lock held by a client that left), it counts again from then.
  void arm_idle_timer() {
    if (options_.idle_timeout.count() == 0 || stopping_ || dispatcher_.open_clients() > 0) return;
    idle_deadline_ = clock_.steady() + options_.idle_timeout;
    wait_for_idle_deadline();
  }

  void wait_for_idle_deadline() {
    if (test_clock_ != nullptr) return;  // checked when a test moves the clock
    idle_timer_.expires_after(*idle_deadline_ - clock_.steady());
    idle_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) check_idle();
    });
  }

  void check_idle() {
    if (!idle_deadline_ || stopping_) return;
    if (clock_.steady() < *idle_deadline_) return wait_for_idle_deadline();
    if (!idle()) return arm_idle_timer();
    spdlog::info("idle for {} ms; shutting down", options_.idle_timeout.count());
    begin_shutdown();
  }

  void begin_shutdown() {
    if (stopping_) return;
    stopping_ = true;
    notify_stopping();
    idle_timer_.cancel();
    watchdog_timer_.cancel();
    lock_timer_.cancel();
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    // Remove the socket first: from now on a client finds no daemon rather than a dying one. (A
    // socket-activated daemon's stays: a client's connect then waits for the next start.)
    remove_socket_file();
    if (webhooks_) webhooks_->stop_accepting();
    if (!methods_) return close_connections();
    // Running methods are stopped before connections close, so their callers hear how they
    // ended. Exec children get SIGKILL within the host's kill grace; the extra time covers it.
    shutdown_timer_.expires_after(options_.shutdown_grace + kMethodStopMargin);
    shutdown_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) close_connections();
    });
    methods_->cancel_all([this] {
      shutdown_timer_.cancel();
      close_connections();
    });
  }

  void close_connections() {
    if (closing_) return;
    closing_ = true;
    // Every listener drains, and the browsers' streams close; the loop stops when the last one is
    // done.
    auto pending = std::make_shared<int>(1 + (http_ ? 1 : 0) + (ui_http_ ? 2 : 0));
    auto one_done = [this, pending] {
      if (--*pending != 0) return;
      // Releases of connection-bound locks in Redis go out before the loop stops.
      if (broker_) return broker_->flush(kBrokerFlushGrace, [this] { io_.stop(); });
      io_.stop();
    };
    if (http_) http_->shutdown(options_.shutdown_grace, one_done);
    if (ui_http_) {
      remove_ui_file();
      ui_http_->shutdown(options_.shutdown_grace, one_done);
      ui_->close_streams(options_.shutdown_grace, one_done);
    }
    server_.shutdown(options_.shutdown_grace, one_done);
  }

  const DaemonOptions& options_;
  const PrivateDir& dir_;
  const PhotonPaths& paths_;
  // The listening socket systemd passed (socket activation); none when the daemon binds its own.
  std::optional<int> inherited_listener_;
  const Clock& clock_;
  // The same clock when a test moves it by hand (--test-clock); null on the system clock.
  ManualClock* test_clock_;
  asio::io_context io_{1};
  // Before the dispatcher, so queued job writes are flushed after the scheduler is gone.
  std::unique_ptr<StoredJobs> jobs_;
  std::unique_ptr<StoredChannels> channel_store_;  // with --persist
  core::TokenAllocator tokens_;
  // After the loop, which the writer posts to: the writer is joined before the loop goes. Before
  // the dispatcher, whose shared locks use the mark.
  std::unique_ptr<asio::thread_pool> token_writer_;
  std::unique_ptr<core::TokenMark> broker_tokens_;
  std::unique_ptr<core::MethodHost> methods_;
  // Before the services (their job persistence); its connections drop their callbacks when it goes.
  std::unique_ptr<broker::RedisBroker> broker_;
  Services services_;
  Dispatcher dispatcher_;
  asio::signal_set signals_;
  asio::steady_timer idle_timer_;
  asio::steady_timer watchdog_timer_;
  asio::steady_timer lock_timer_;
  asio::steady_timer shutdown_timer_;
  asio::steady_timer memory_release_timer_;
  bool lock_timer_armed_ = false;
  std::chrono::steady_clock::time_point wake_for_;
  // When the idle timeout fires if nothing happens first; none while a client is connected.
  std::optional<std::chrono::steady_clock::time_point> idle_deadline_;
  bool stopping_ = false;
  bool closing_ = false;
  // The webhook endpoint (when configured): after the dispatcher, whose publisher it uses.
  std::unique_ptr<core::WebhookService> webhooks_;
  std::unique_ptr<net::HttpServer> http_;
  // The browser listener (when configured): the service before its server, which calls it.
  std::string ui_token_;
  std::unique_ptr<ui::UiService> ui_;
  std::unique_ptr<net::HttpServer> ui_http_;
  // Last, so it is destroyed first: closing connections calls back into everything above.
  net::UnixServer server_;
};

Daemon::Daemon(const DaemonOptions& options, const Clock& clock, const PrivateDir& dir,
               const PhotonPaths& paths, std::uint64_t token_mark, std::unique_ptr<StoredJobs> jobs,
               std::optional<int> inherited_listener, ManualClock* test_clock)
    : impl_(std::make_unique<Impl>(options, clock, dir, paths, token_mark, std::move(jobs),
                                   inherited_listener, test_clock)) {}
Daemon::~Daemon() = default;
void Daemon::load_jobs() { impl_->load_jobs(); }
void Daemon::listen() {
  impl_->listen();
  impl_->listen_ui();
}
void Daemon::run() { impl_->run(); }
void Daemon::remove_files() {
  impl_->remove_socket_file();
  impl_->remove_ui_file();
}
std::size_t Daemon::stuck_calls() const { return impl_->stuck_calls(); }
void Daemon::flush_jobs() { impl_->flush_jobs(); }
net::PeerHandler& Daemon::connections() { return *impl_; }
boost::asio::io_context& Daemon::loop() { return impl_->loop(); }
void Daemon::check_deadlines() { impl_->check_deadlines(); }
bool Daemon::stopping() const { return impl_->stopping(); }

void run_daemon(const DaemonOptions& options, const std::function<void()>& on_ready) {
  if (auto error = photon_name_error(options.photon_name)) throw StartupError(2, *error);
  // Everything the daemon creates (pid file, log, socket) is for its owner alone.
  ::umask(077);
  const PhotonPaths paths = photon_paths(options.photon_name);
  // Every file below is reached through this descriptor, never through its path again.
  const PrivateDir dir = open_daemons_dir(paths.daemons_dir);
  // Taken before anything else can fail, so the descriptor is never left in the environment.
  const std::optional<int> inherited = inherited_listener(paths.socket);

  pid_t holder = 0;
  std::optional<InstanceLock> instance = [&] {
    try {
      return InstanceLock::acquire(dir, entry(paths.pid_file), holder);
    } catch (const std::exception& error) {
      throw StartupError(1, error.what());
    }
  }();
  if (!instance) {
    throw StartupError(1, "photon \"" + options.photon_name + "\" is already running" +
                              (holder > 0 ? " (pid " + std::to_string(holder) + ")" : ""));
  }
  // We hold the lock, so a socket file here belongs to a daemon that died, unless something that
  // ignores the lock answers on it: that one we never unlink. (With socket activation the file is
  // systemd's socket, the one passed to us.)
  const std::string socket_entry = entry(paths.socket);
  try {
    if (const auto found = inherited ? std::nullopt : dir.status(socket_entry)) {
      if (S_ISDIR(found->st_mode)) {
        throw StartupError(1, paths.socket.string() + " is a directory; not replacing it");
      }
      if (socket_answers(dir, socket_entry)) {
        throw StartupError(1, "a process answers on " + paths.socket.string() +
                                  " without holding " + paths.pid_file.string() +
                                  "; not replacing it");
      }
      if (!dir.remove(socket_entry)) {
        throw StartupError(1,
                           "cannot remove " + paths.socket.string() + ": " + std::strerror(errno));
      }
    }
  } catch (const std::system_error& error) {
    throw StartupError(1, error.what());
  }

  set_up_logging(options, dir, paths);
  raise_descriptor_limit();
  // For the tz database and zone files, which must open a file even when connections have taken
  // every other descriptor (jobs/cron.hpp).
  reserve_descriptors(kReservedDescriptors);
  std::signal(SIGPIPE, SIG_IGN);

  std::uint64_t token_mark = 0;
  try {
    token_mark = store::load_token_mark(dir, entry(paths.token_file));
  } catch (const std::runtime_error& error) {
    throw StartupError(1, error.what());
  }
  // The persistent channels' messages are kept on disk within the window's own bounds.
  auto jobs = std::make_unique<StoredJobs>(
      dir, entry(paths.job_db),
      store::JobStoreOptions{.events_per_channel = options.replay_channel_messages,
                             .events_in_all = std::max<std::size_t>(options.replay_messages, 1)});
  try {
    if (!options.broker) jobs->open_if_present();  // shared jobs live in Redis
  } catch (const store::StoreError& error) {
    throw StartupError(1, error.what());
  }
  const SystemClock system_clock;
  // A test build's --test-clock: the daemon's time starts now (or at the wall time asked for)
  // and moves only when a test_clock request moves it.
  std::optional<ManualClock> test_clock;
  if (options.test_clock) {
    test_clock.emplace(std::chrono::steady_clock::now(),
                       options.test_clock_start.value_or(std::chrono::system_clock::now()));
  }
  const Clock& clock = test_clock ? static_cast<const Clock&>(*test_clock) : system_clock;
  Daemon daemon(options, clock, dir, paths, token_mark, std::move(jobs), inherited,
                test_clock ? &*test_clock : nullptr);
  daemon.load_jobs();
  try {
    daemon.listen();
  } catch (const boost::system::system_error& error) {
    throw StartupError(1, error.what());
  }
  spdlog::info("photond {} serving \"{}\" on {} (pid {}{})", PHOTON_VERSION, options.photon_name,
               paths.socket.string(), ::getpid(), inherited ? ", socket from systemd" : "");
  on_ready();
  notify_ready("serving \"" + options.photon_name + "\" on " + paths.socket.string());
  daemon.run();
  daemon.remove_files();
  if (const std::size_t stuck = daemon.stuck_calls(); stuck > 0) {
    // A method that ignores Context::cancelled() would keep the process alive for ever: its
    // thread cannot be stopped from outside, so the process ends without waiting for it.
    spdlog::warn("{} method call(s) still running after the shutdown grace; exiting without them",
                 stuck);
    daemon.flush_jobs();  // what was answered "scheduled" must not be lost with the threads
    spdlog::info("stopped");
    spdlog::shutdown();
    std::_Exit(0);
  }
  spdlog::info("stopped");
}

}  // namespace photon::daemon
