// The HTTP server over real TCP on 127.0.0.1: the server runs in this process on its own event
// loop thread; clients are raw blocking sockets, so each test controls the bytes it sends. Limits
// and timeouts are small so the whole file runs in a few seconds.
#include "net/http_server.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace photon::net {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
using Response = http::response<http::string_body>;

// How long a client waits for something that should come. Generous: sanitizer builds are slow,
// and a test that passes only waits as long as the server takes.
constexpr Millis kWait = 15s;  // a deadline only a failing test reaches, even on a loaded machine

Millis elapsed_since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<Millis>(SteadyClock::now() - start);
}

std::string field(const Response& response, std::string_view name) {
  return std::string(response[name]);
}

// A blocking TCP client with deadlines; responses are parsed by Beast.
class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t count = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (count < 0 && errno == EINTR) continue;
      if (count < 0) return false;
      data.remove_prefix(static_cast<std::size_t>(count));
    }
    return true;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next response (a 100 Continue counts), or nullopt if none is complete within `timeout`.
  // `head`: the response answers a HEAD request (its Content-Length describes no body).
  std::optional<Response> read_response(Millis timeout = kWait, bool head = false) {
    const auto deadline = SteadyClock::now() + timeout;
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.skip(head);
    for (;;) {
      if (!input_.empty()) {
        boost::beast::error_code ec;
        const std::size_t used = parser.put(asio::buffer(input_), ec);
        input_.erase(0, used);
        if (parser.is_done()) return parser.release();
        if (ec && ec != http::error::need_more) {
          ADD_FAILURE() << "malformed response: " << ec.message();
          return std::nullopt;
        }
        if (!ec && used > 0) continue;
      }
      const Read read = receive(deadline);
      if (read == Read::kData) continue;
      if (read == Read::kClosed && parser.got_some()) {
        boost::beast::error_code ec;
        parser.put_eof(ec);
        if (!ec && parser.is_done()) return parser.release();
      }
      return std::nullopt;
    }
  }

  // Whether the server closes the connection (end of stream or reset) within `timeout`, without
  // sending anything more first.
  bool closed_within(Millis timeout = kWait) {
    if (!input_.empty()) return false;
    return receive(SteadyClock::now() + timeout) == Read::kClosed;
  }

 private:
  enum class Read { kData, kClosed, kTimeout };

  Read receive(SteadyClock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now());
      if (left.count() <= 0) return Read::kTimeout;
      pollfd poll_fd{fd_, POLLIN, 0};
      const int ready = ::poll(&poll_fd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return Read::kTimeout;
      std::array<char, 16 * 1024> chunk;
      const ssize_t count = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (count > 0) {
        input_.append(chunk.data(), static_cast<std::size_t>(count));
        return Read::kData;
      }
      if (count < 0 && errno == EINTR) continue;
      return Read::kClosed;  // end of stream, or reset
    }
  }

  int fd_;
  bool connected_ = false;
  std::string input_;  // received, not yet parsed
};

std::string post(std::string_view target, std::string_view body, std::string_view extra = "") {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}

std::string get(std::string_view target, std::string_view extra = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) + "\r\n";
}

HttpResponse echo(const HttpRequest& request) {
  HttpResponse response;
  response.headers = {{"X-Method", request.method}, {"X-Target", request.target}};
  response.body = request.body;
  return response;
}

// Records every request; answers with `serve` (on the loop thread) if set, else echoes.
class TestHandler : public HttpHandler {
 public:
  std::function<void(HttpRequest, HttpRespond)> serve;

  void handle(HttpRequest request, HttpRespond respond) override {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    if (serve) return serve(std::move(request), std::move(respond));
    respond(echo(request));
  }

  std::vector<HttpRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  // For `serve`: keeps a respond to be called later by the test (on the loop).
  void hold(HttpRespond respond) {
    std::lock_guard lock(mutex_);
    held_.push_back(std::move(respond));
  }
  std::size_t held() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  HttpRespond held_at(std::size_t index) {
    std::lock_guard lock(mutex_);
    return held_.at(index);
  }

 private:
  std::mutex mutex_;
  std::vector<HttpRequest> requests_;
  std::vector<HttpRespond> held_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { spdlog::set_level(spdlog::level::debug); }

  void start(HttpLimits limits = {}) {
    server_.emplace(io_, handler_, limits);
    server_->listen(asio::ip::make_address("127.0.0.1"), 0);
    port_ = server_->local_endpoint().port();
    server_->start();
    loop_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    work_.reset();
    io_.stop();
    if (loop_.joinable()) loop_.join();
    server_.reset();
  }

  // Runs `function` on the loop thread and returns its result.
  template <typename Function>
  auto on_loop(Function function) -> decltype(function()) {
    std::packaged_task<decltype(function())()> task(std::move(function));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

  std::size_t open_connections() {
    return on_loop([this] { return server_->open_connections(); });
  }

  // Serve /hold by keeping the respond for later; echo anything else.
  void hold_requests_to(std::string target) {
    handler_.serve = [this, target](HttpRequest request, HttpRespond respond) {
      if (request.target == target) return handler_.hold(std::move(respond));
      respond(echo(request));
    };
  }

  static bool eventually(const std::function<bool()>& condition, Millis timeout = kWait) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!condition()) {
      if (SteadyClock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  TestHandler handler_;
  std::optional<HttpServer> server_;
  std::thread loop_;
  std::uint16_t port_ = 0;
};

TEST_F(HttpServerTest, EchoesAPost) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.send("POST /webhook/moveTask?async=1 HTTP/1.1\r\nHost: test\r\nX-First: 1\r\n"
                  "Content-Type: text/plain\r\nx-FIRST: 2\r\nContent-Length: 5\r\n\r\nhello"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(response->version(), 11u);
  EXPECT_EQ(field(*response, "X-Method"), "POST");
  EXPECT_EQ(field(*response, "X-Target"), "/webhook/moveTask?async=1");
  EXPECT_EQ(field(*response, "Content-Type"), "application/json");
  EXPECT_EQ(field(*response, "Content-Length"), "5");
  EXPECT_EQ(field(*response, "Connection"), "");
  EXPECT_EQ(response->body(), "hello");

  const auto requests = handler_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const HttpRequest& request = requests[0];
  EXPECT_GT(request.id, 0u);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/webhook/moveTask?async=1");
  EXPECT_EQ(request.body, "hello");
  // A repeated name's lines stay in order, next to the first (Beast keeps them together).
  const std::vector<std::pair<std::string, std::string>> headers = {{"host", "test"},
                                                                    {"x-first", "1"},
                                                                    {"x-first", "2"},
                                                                    {"content-type", "text/plain"},
                                                                    {"content-length", "5"}};
  EXPECT_EQ(request.headers, headers);
  EXPECT_EQ(request.header("x-first"), "1");
  EXPECT_EQ(request.header("content-type"), "text/plain");
  EXPECT_FALSE(request.header("x-missing"));
  EXPECT_EQ(request.remote.rfind("127.0.0.1:", 0), 0u) << request.remote;
}

TEST_F(HttpServerTest, SendsTheHandlersStatusHeadersAndBody) {
  handler_.serve = [](HttpRequest, HttpRespond respond) {
    respond({.status = 201,
             .headers = {{"Content-Type", "text/plain"},
                         {"X-Custom", "yes"},
                         {"Content-Length", "999"},
                         {"Connection", "upgrade"}},
             .body = "created"});
  };
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(get("/")));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 201u);
  EXPECT_EQ(field(*response, "Content-Type"), "text/plain");
  EXPECT_EQ(field(*response, "X-Custom"), "yes");
  EXPECT_EQ(field(*response, "Content-Length"), "7");  // the server's, not the handler's
  EXPECT_EQ(field(*response, "Connection"), "");
  EXPECT_EQ(response->body(), "created");
}

TEST_F(HttpServerTest, DecodesAChunkedBody) {
  start();
  Client client(port_);
  ASSERT_TRUE(
      client.send("POST /chunks HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(response->body(), "hello world");
}

TEST_F(HttpServerTest, KeepsTheConnectionAlive) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(post("/first", "one")));
  const auto first = client.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body(), "one");
  ASSERT_TRUE(client.send(post("/second", "two")));
  const auto second = client.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body(), "two");
  EXPECT_EQ(open_connections(), 1u);

  const auto requests = handler_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(requests[0].id, requests[1].id);
}

TEST_F(HttpServerTest, ClosesAnHttp10ConnectionAfterTheResponse) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.send("GET /old HTTP/1.0\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->version(), 10u);
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(field(*response, "X-Target"), "/old");
  EXPECT_EQ(field(*response, "Connection"), "close");
  EXPECT_TRUE(client.closed_within());
}

TEST_F(HttpServerTest, KeepsAnHttp10ConnectionAliveWhenAsked) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const auto first = client.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(field(*first, "Connection"), "keep-alive");
  ASSERT_TRUE(client.send("GET /b HTTP/1.0\r\n\r\n"));
  const auto second = client.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(field(*second, "X-Target"), "/b");
  EXPECT_TRUE(client.closed_within());
}

TEST_F(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  // The first is answered late: the others must still come after it.
  handler_.serve = [this](HttpRequest request, HttpRespond respond) {
    if (request.target != "/1") return respond(echo(request));
    auto timer = std::make_shared<asio::steady_timer>(io_, 30ms);
    timer->async_wait(
        [timer, request, respond](boost::system::error_code) { respond(echo(request)); });
  };
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(post("/1", "a") + get("/2") + post("/3", "c")));
  for (const std::string target : {"/1", "/2", "/3"}) {
    const auto response = client.read_response();
    ASSERT_TRUE(response) << target;
    EXPECT_EQ(field(*response, "X-Target"), target);
  }
  const auto requests = handler_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].body, "a");
  EXPECT_EQ(requests[1].body, "");
  EXPECT_EQ(requests[2].body, "c");
}

TEST_F(HttpServerTest, ServesOthersWhileAHandlerAnswersLater) {
  handler_.serve = [this](HttpRequest request, HttpRespond respond) {
    if (request.target != "/slow") return respond(echo(request));
    auto timer = std::make_shared<asio::steady_timer>(io_, 50ms);
    timer->async_wait(
        [timer, request, respond](boost::system::error_code) { respond(echo(request)); });
  };
  start();
  const auto start_time = SteadyClock::now();
  Client slow(port_);
  Client fast(port_);
  ASSERT_TRUE(slow.send(get("/slow")));
  ASSERT_TRUE(eventually([&] { return handler_.requests().size() == 1; }));
  ASSERT_TRUE(fast.send(get("/fast")));
  const auto fast_response = fast.read_response();
  const Millis fast_time = elapsed_since(start_time);
  const auto slow_response = slow.read_response();
  const Millis slow_time = elapsed_since(start_time);
  ASSERT_TRUE(fast_response);
  ASSERT_TRUE(slow_response);
  EXPECT_EQ(field(*fast_response, "X-Target"), "/fast");
  EXPECT_EQ(field(*slow_response, "X-Target"), "/slow");
  EXPECT_GE(slow_time, 50ms);
  EXPECT_LT(fast_time, slow_time);
}

TEST_F(HttpServerTest, RespondAfterTheClientLeftIsHarmless) {
  hold_requests_to("/hold");
  start();
  {
    Client client(port_);
    ASSERT_TRUE(client.send(get("/hold")));
    ASSERT_TRUE(eventually([&] { return handler_.held() == 1; }));
  }
  const HttpRespond respond = handler_.held_at(0);
  on_loop([&] { respond(echo(HttpRequest{.target = "/hold"})); });
  EXPECT_TRUE(eventually([&] { return open_connections() == 0; }));
  on_loop([&] { respond(HttpResponse{}); });  // a second call is ignored

  Client next(port_);
  ASSERT_TRUE(next.send(get("/after")));
  const auto response = next.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(field(*response, "X-Target"), "/after");
}

TEST_F(HttpServerTest, RefusesAnOversizedContentLengthWithoutReadingTheBody) {
  // The body timeout is long: a prompt answer shows the server did not wait for the body.
  start({.max_body_bytes = 1024, .body_timeout = 30s});
  Client client(port_);
  ASSERT_TRUE(client.send("POST /big HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000\r\n\r\n"));
  // read_response gives up after kWait, well before the 30 s body timeout: an answer at all
  // shows the server did not wait for the body.
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 413u);
  EXPECT_EQ(response->body(), R"({"error":"body exceeds 1024 bytes"})");
  EXPECT_EQ(field(*response, "Content-Type"), "application/json");
  EXPECT_EQ(field(*response, "Connection"), "close");
  EXPECT_TRUE(client.closed_within());
  EXPECT_TRUE(handler_.requests().empty());
}

TEST_F(HttpServerTest, RefusesAnOversizedChunkedBody) {
  start({.max_body_bytes = 1024});
  Client client(port_);
  const std::string chunk = "320\r\n" + std::string(800, 'x') + "\r\n";  // 0x320 = 800 bytes
  ASSERT_TRUE(client.send(
      "POST /chunks HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 413u);
  EXPECT_EQ(response->body(), R"({"error":"body exceeds 1024 bytes"})");
  EXPECT_EQ(field(*response, "Connection"), "close");
  EXPECT_TRUE(client.closed_within());
  EXPECT_TRUE(handler_.requests().empty());
}

TEST_F(HttpServerTest, RefusesHugeHeaders) {
  start({.max_header_bytes = 1024});
  Client client(port_);
  ASSERT_TRUE(client.send(get("/", "X-Big: " + std::string(2000, 'x') + "\r\n")));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 431u);
  EXPECT_EQ(response->body(), R"({"error":"request header exceeds 1024 bytes"})");
  EXPECT_EQ(field(*response, "Connection"), "close");
  EXPECT_TRUE(client.closed_within());
  EXPECT_TRUE(handler_.requests().empty());
}

TEST_F(HttpServerTest, RefusesGarbage) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.send("this is not http\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 400u);
  EXPECT_EQ(response->body().rfind(R"({"error":"malformed HTTP request: )", 0), 0u)
      << response->body();
  EXPECT_EQ(field(*response, "Connection"), "close");
  EXPECT_TRUE(client.closed_within());
  EXPECT_TRUE(handler_.requests().empty());
}

TEST_F(HttpServerTest, RefusesAnUnsupportedVersion) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.send("GET / HTTP/2.0\r\nHost: test\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 400u);
  EXPECT_EQ(response->body(), R"({"error":"malformed HTTP request: bad version"})");
  EXPECT_TRUE(client.closed_within());
}

TEST_F(HttpServerTest, ClosesASlowLorisAfterTheHeaderTimeout) {
  start({.header_timeout = 500ms});
  Client client(port_);
  const std::string request = get("/", "X-Slow: " + std::string(100, 'x') + "\r\n");
  const auto start_time = SteadyClock::now();
  std::optional<Response> response;
  std::size_t sent = 0;
  for (const char byte : request) {
    if (!client.send(std::string_view(&byte, 1))) break;
    ++sent;
    response = client.read_response(200ms);
    if (response) break;
  }
  const Millis elapsed = elapsed_since(start_time);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 408u);
  EXPECT_EQ(response->body(), R"({"error":"request header not received within 500 ms"})");
  EXPECT_GE(elapsed, 450ms);  // a timer never fires early, however loaded the machine
  // The answer came while the header was still trickling in (a byte per 200 ms: 24 s in all).
  EXPECT_LT(sent, request.size());
  EXPECT_TRUE(client.closed_within());
  EXPECT_TRUE(handler_.requests().empty());
}

TEST_F(HttpServerTest, ClosesASilentNewConnectionAfterTheHeaderTimeout) {
  start({.header_timeout = 300ms});
  Client client(port_);
  const auto start_time = SteadyClock::now();
  EXPECT_TRUE(client.closed_within());  // quietly: no request, nothing to answer
  EXPECT_GE(elapsed_since(start_time), 250ms);
}

TEST_F(HttpServerTest, AnswersASlowBodyWith408) {
  start({.body_timeout = 300ms});
  Client client(port_);
  const auto start_time = SteadyClock::now();
  ASSERT_TRUE(
      client.send("POST /slow HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly ten.."));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_GE(elapsed_since(start_time), 250ms);
  EXPECT_EQ(response->result_int(), 408u);
  EXPECT_EQ(response->body(), R"({"error":"request body not received within 300 ms"})");
  EXPECT_EQ(field(*response, "Connection"), "close");
  EXPECT_TRUE(client.closed_within());
  EXPECT_TRUE(handler_.requests().empty());
}

TEST_F(HttpServerTest, ClosesAnIdleKeptAliveConnection) {
  start({.header_timeout = 5s, .keep_alive_timeout = 300ms});
  Client client(port_);
  ASSERT_TRUE(client.send(get("/")));
  ASSERT_TRUE(client.read_response());
  const auto start_time = SteadyClock::now();
  EXPECT_TRUE(client.closed_within());
  EXPECT_GE(elapsed_since(start_time), 250ms);
}

TEST_F(HttpServerTest, RefusesConnectionsOverTheLimit) {
  start({.max_connections = 2});
  Client first(port_);
  Client second(port_);
  for (Client* client : {&first, &second}) {
    ASSERT_TRUE(client->send(get("/")));
    ASSERT_TRUE(client->read_response());
  }
  Client third(port_);
  const auto refused = third.read_response();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->result_int(), 503u);
  EXPECT_EQ(refused->body(), R"({"error":"too many connections (limit 2); try again later"})");
  EXPECT_EQ(field(*refused, "Connection"), "close");
  EXPECT_TRUE(third.closed_within());
  EXPECT_EQ(open_connections(), 2u);

  ASSERT_TRUE(first.send(get("/still")));
  const auto still = first.read_response();
  ASSERT_TRUE(still);
  EXPECT_EQ(still->result_int(), 200u);

  second.close();
  ASSERT_TRUE(eventually([&] { return open_connections() == 1; }));
  Client fourth(port_);
  ASSERT_TRUE(fourth.send(get("/fourth")));
  const auto admitted = fourth.read_response();
  ASSERT_TRUE(admitted);
  EXPECT_EQ(admitted->result_int(), 200u);
}

TEST_F(HttpServerTest, ClosesAfterMaxRequestsPerConnection) {
  start({.max_requests_per_connection = 2});
  Client client(port_);
  ASSERT_TRUE(client.send(get("/1")));
  const auto first = client.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(field(*first, "Connection"), "");
  ASSERT_TRUE(client.send(get("/2")));
  const auto second = client.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(field(*second, "Connection"), "close");
  EXPECT_TRUE(client.closed_within());
}

TEST_F(HttpServerTest, ShutdownLetsARequestInProgressFinish) {
  hold_requests_to("/hold");
  start();
  Client idle(port_);
  ASSERT_TRUE(idle.send(get("/")));
  ASSERT_TRUE(idle.read_response());
  Client busy(port_);
  ASSERT_TRUE(busy.send(get("/hold")));
  ASSERT_TRUE(eventually([&] { return handler_.held() == 1; }));

  std::atomic<bool> done = false;
  on_loop([&] { server_->shutdown(5s, [&] { done = true; }); });
  EXPECT_TRUE(idle.closed_within());
  EXPECT_FALSE(Client(port_).connected());
  EXPECT_FALSE(done);

  const HttpRespond respond = handler_.held_at(0);
  on_loop([&] { respond(echo(HttpRequest{.target = "/hold"})); });
  const auto response = busy.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(field(*response, "Connection"), "close");
  EXPECT_TRUE(busy.closed_within());
  busy.close();
  EXPECT_TRUE(eventually([&] { return done.load(); }));
  EXPECT_EQ(open_connections(), 0u);
}

TEST_F(HttpServerTest, ShutdownClosesWhatIsStillBusyAfterTheGrace) {
  hold_requests_to("/hold");
  start();
  Client busy(port_);
  ASSERT_TRUE(busy.send(get("/hold")));
  ASSERT_TRUE(eventually([&] { return handler_.held() == 1; }));

  std::atomic<bool> done = false;
  const auto start_time = SteadyClock::now();
  on_loop([&] { server_->shutdown(200ms, [&] { done = true; }); });
  EXPECT_TRUE(busy.closed_within());
  EXPECT_GE(elapsed_since(start_time), 150ms);
  EXPECT_TRUE(eventually([&] { return done.load(); }));
  const HttpRespond respond = handler_.held_at(0);
  on_loop([&] { respond(HttpResponse{}); });  // the connection is gone: nothing happens
  EXPECT_EQ(open_connections(), 0u);
}

TEST_F(HttpServerTest, AnswersExpectContinue) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(
      "POST /e HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  const auto interim = client.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100u);
  ASSERT_TRUE(client.send("hello"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(response->body(), "hello");
}

TEST_F(HttpServerTest, AnswersExpectContinueOverTheLimitWith413) {
  start({.max_body_bytes = 1024});
  Client client(port_);
  ASSERT_TRUE(client.send(
      "POST /e HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 413u);
  EXPECT_TRUE(client.closed_within());
}

TEST_F(HttpServerTest, AnswersHeadWithoutABody) {
  handler_.serve = [](HttpRequest request, HttpRespond respond) {
    respond({.body = request.method == "HEAD" ? "abc" : "get"});
  };
  start();
  Client client(port_);
  ASSERT_TRUE(client.send("HEAD / HTTP/1.1\r\nHost: test\r\n\r\n"));
  const auto head = client.read_response(kWait, true);
  ASSERT_TRUE(head);
  EXPECT_EQ(field(*head, "Content-Length"), "3");
  // Had a body been sent, it would be read as the next response.
  ASSERT_TRUE(client.send(get("/")));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body(), "get");
}

TEST_F(HttpServerTest, SendsNoBodyWith204) {
  handler_.serve = [](HttpRequest, HttpRespond respond) {
    respond({.status = 204, .body = "dropped"});
  };
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(get("/") + get("/")));
  for (int i = 0; i < 2; ++i) {
    const auto response = client.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->result_int(), 204u);
    EXPECT_EQ(field(*response, "Content-Length"), "");
    EXPECT_EQ(response->body(), "");
  }
}

TEST_F(HttpServerTest, AnswersADroppedRequestWith500) {
  handler_.serve = [](HttpRequest, HttpRespond) {};
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(get("/")));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(response->body(), R"({"error":"internal error: the request was not answered"})");
}

TEST_F(HttpServerTest, AnswersAThrowingHandlerWith500) {
  handler_.serve = [](HttpRequest, HttpRespond) { throw std::runtime_error("boom"); };
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(get("/")));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(response->body(), R"({"error":"internal error while handling the request"})");
}

TEST_F(HttpServerTest, ReplacesAnInvalidResponseWith500) {
  handler_.serve = [](HttpRequest, HttpRespond respond) {
    respond({.headers = {{"X-Bad", "a\r\nInjected: yes"}}});
  };
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(get("/")));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(field(*response, "Injected"), "");
  EXPECT_EQ(response->body(), R"({"error":"internal error: invalid response"})");
}

TEST_F(HttpServerTest, ListenFailsOnAnAddressInUse) {
  server_.emplace(io_, handler_, HttpLimits{});
  server_->listen(asio::ip::make_address("127.0.0.1"), 0);
  port_ = server_->local_endpoint().port();
  HttpServer other(io_, handler_, {});
  // SO_REUSEADDR does not allow two listeners on one port.
  EXPECT_THROW(other.listen(asio::ip::make_address("127.0.0.1"), port_),
               boost::system::system_error);
}

}  // namespace
}  // namespace photon::net
