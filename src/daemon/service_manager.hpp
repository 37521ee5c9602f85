// The daemon under a service manager (systemd): a listening socket passed by socket activation
// (sd_listen_fds), readiness and stopping (sd_notify), and the watchdog's keep-alive. Outside
// systemd every call here is a no-op, so the same binary runs by hand, detached or as a unit.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace photon::daemon {

// The listening socket systemd passed for `socket_path`, or nothing when the daemon was not
// socket-activated. Takes the descriptor out of the environment (LISTEN_* are unset, so method
// children neither see nor inherit it) and marks it close-on-exec.
// Throws StartupError (exit 1) when what was passed is not usable as the photon's socket: more
// than one descriptor, not a listening Unix stream socket bound to `socket_path`, or a socket
// file another user owns or that is not mode 0600 (the unit's SocketMode=0600): the daemon's own
// rules hold whoever created the socket.
std::optional<int> inherited_listener(const std::filesystem::path& socket_path);

// Tells the service manager the daemon serves (Type=notify), with a status line.
void notify_ready(const std::string& status);

// Tells the service manager the daemon is shutting down.
void notify_stopping();

// The interval at which to send keep-alives: half the unit's WatchdogSec, or nothing when the
// watchdog is off (or the daemon runs outside systemd).
std::optional<std::chrono::microseconds> watchdog_interval();

// One keep-alive (WATCHDOG=1). Sent from the event loop, so it proves the loop turns.
void notify_watchdog();

}  // namespace photon::daemon
