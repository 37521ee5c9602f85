// photonctl service install|uninstall: the systemd user units that run a photon's daemon on
// demand (socket activation, packaging/systemd/), and the systemctl commands that enable them.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace photon::cli {

// The `service` subcommand. Construct it beside the other subcommands (it registers itself on
// `app` and must outlive the parse); after parsing, `if (service) return service.run(...);`.
//
// install writes the template units photond@.service and photond@.socket (ExecStart naming
// `photond`, the daemon beside this photonctl) and the photon's drop-ins (its socket path under
// $PHOTON_DIR, its command line) to $XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user),
// then prints what to run. It never runs systemctl itself: the user's systemd may not be there (a
// container, ssh without lingering), and enabling a unit is the user's decision.
class ServiceCommand {
 public:
  explicit ServiceCommand(CLI::App& app);
  ServiceCommand(const ServiceCommand&) = delete;
  ServiceCommand& operator=(const ServiceCommand&) = delete;

  explicit operator bool() const { return static_cast<bool>(*command_); }

  // Returns the exit status: 0 done, 1 refused (not installed, still enabled, a file that cannot
  // be written), 2 usage.
  int run(bool json, const std::string& photond) const;

 private:
  int install(bool json, const std::string& photond) const;
  int uninstall(bool json) const;

  CLI::App* command_;
  CLI::App* install_;
  CLI::App* uninstall_;
  std::string name_;
  std::string manifest_;
  std::string idle_timeout_ = "10m";
};

// The unit files as packaged (packaging/systemd/), compiled in.
std::string_view service_unit_template();
std::string_view socket_unit_template();

}  // namespace photon::cli
