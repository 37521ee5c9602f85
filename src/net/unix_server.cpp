// The listener: accept loop with descriptor-exhaustion back-off, peer-uid check, graceful stop.
#include "net/unix_server.hpp"

#include "net/accept_backoff.hpp"
#include "net/connection.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace photon::net {
namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

UnixServer::UnixServer(asio::io_context& io, PeerHandler& handler, const Clock& clock,
                       ServerLimits limits)
    : io_(io),
      handler_(handler),
      clock_(clock),
      limits_(limits),
      acceptor_(io),
      backoff_timer_(io),
      grace_timer_(io) {}

UnixServer::~UnixServer() {
  auto open = std::move(connections_);
  connections_.clear();
  for (auto& [raw, connection] : open) connection->close();
}

void UnixServer::listen(const PrivateDir& dir, std::string_view name) {
  // The umask makes the socket 0600 from the moment it exists; chmod afterwards is belt and braces.
  const mode_t previous = ::umask(0177);
  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  if (!ec) acceptor_.bind(stream::endpoint(dir.entry_path(name)), ec);
  ::umask(previous);
  if (ec) throw boost::system::system_error(ec, "bind " + dir.shown(name).string());
  if (::fchmodat(dir.fd(), std::string(name).c_str(), 0600, 0) != 0) {
    throw std::system_error(errno, std::generic_category(), "chmod " + dir.shown(name).string());
  }
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void UnixServer::adopt(int fd) {
  boost::system::error_code ec;
  acceptor_.assign(stream(), fd, ec);
  if (ec) {
    ::close(fd);
    throw boost::system::system_error(ec, "adopt the inherited socket");
  }
}

void UnixServer::start() {
  asio::co_spawn(io_, accept_loop(), [this](std::exception_ptr error) {
    if (!error || stopping_) return;
    // Something threw inside the loop (e.g. out of memory while admitting): keep accepting.
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& exception) {
      spdlog::error("accept loop failed: {}; restarting it", exception.what());
    }
    start();
  });
}

asio::awaitable<void> UnixServer::accept_loop() {
  bool warned_exhaustion = false;
  while (!stopping_) {
    boost::system::error_code ec;
    stream::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      if (is_resource_exhaustion(ec)) {
        // The pending connection stays in the backlog; retry once descriptors may be free again
        // instead of spinning on a listener that stays readable.
        if (!warned_exhaustion) {
          spdlog::warn("accept: {} ({} connections open); pausing accepts", ec.message(),
                       connections_.size());
          warned_exhaustion = true;
        }
        ++accept_pauses_;
        backoff_until_ = clock_.steady() + kAcceptBackoff;
        if (manual_clock_) {
          backoff_timer_.expires_at(asio::steady_timer::time_point::max());  // check_deadlines
        } else {
          backoff_timer_.expires_after(kAcceptBackoff);
        }
        co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        backoff_until_.reset();
      } else {
        spdlog::error("accept: {}", ec.message());
      }
      continue;
    }
    if (warned_exhaustion) {
      spdlog::info("accept: descriptors available again");
      warned_exhaustion = false;
    }
    admit(std::move(socket));
  }
}

void UnixServer::admit(stream::socket socket) {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    return refuse(socket, TransportRefusal::kNoCredentials, 0);
  }
  if (credentials.uid != 0 && credentials.uid != ::geteuid()) {
    spdlog::warn("refused a connection from uid {} (pid {})", credentials.uid, credentials.pid);
    return refuse(socket, TransportRefusal::kPermissionDenied, credentials.uid);
  }
  if (connections_.size() >= limits_.max_connections) {
    spdlog::warn("refused a connection: {} connections open", connections_.size());
    return refuse(socket, TransportRefusal::kTooManyConnections, limits_.max_connections);
  }
  auto connection = std::make_shared<Connection>(std::move(socket), *this);
  connections_.emplace(connection.get(), connection);
  connection->start();
}

void UnixServer::refuse(stream::socket& socket, TransportRefusal reason, std::uint64_t value) {
  ++connections_refused_;
  // A fresh socket's send buffer is empty, so this short line goes out whole or not at all.
  const std::string line = handler_.refusal_line(reason, value);
  [[maybe_unused]] ssize_t ignored =
      ::send(socket.native_handle(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  boost::system::error_code ec;
  socket.close(ec);
}

void UnixServer::check_deadlines() {
  // Dropping posts the close, so connections_ does not change under the loop.
  for (auto& [raw, connection] : connections_) connection->check_soft_limit();
  if (backoff_until_ && clock_.steady() >= *backoff_until_) backoff_timer_.cancel();
}

void UnixServer::remove(Connection* connection) {
  // Keep the object alive until this call's caller (a member of it) has returned.
  auto found = connections_.find(connection);
  if (found == connections_.end()) return;
  asio::post(io_, [keep = std::move(found->second)] {});
  connections_.erase(found);
  finish_shutdown_if_done();
}

void UnixServer::shutdown(std::chrono::milliseconds grace, std::function<void()> on_stopped) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();
  // close_after_flush may close a connection (and remove it from the table) right away.
  std::vector<std::shared_ptr<Connection>> open;
  for (auto& [raw, connection] : connections_) open.push_back(connection);
  for (auto& connection : open) connection->close_after_flush();
  grace_timer_.expires_after(grace);
  grace_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    std::vector<std::shared_ptr<Connection>> remaining;
    for (auto& [raw, connection] : connections_) remaining.push_back(connection);
    for (auto& connection : remaining) connection->close();
  });
  finish_shutdown_if_done();
}

void UnixServer::finish_shutdown_if_done() {
  if (!stopping_ || !connections_.empty() || !on_stopped_) return;
  grace_timer_.cancel();
  asio::post(io_, std::move(on_stopped_));
  on_stopped_ = nullptr;
}

}  // namespace photon::net
