// photonctl ui: the address of a daemon's dashboard, with its token, opened in a browser or
// printed.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace photon::cli {

// The `ui` subcommand. Construct it beside the other subcommands (it registers itself on `app` and
// must outlive the parse); after parsing, `if (ui) return ui.run(json);`.
//
// The daemon's `status` says whether it has a UI listener (`data.ui.url`); the token is read from
// $PHOTON_DIR/daemons/NAME.ui, which only the daemon's owner can read.
class UiCommand {
 public:
  explicit UiCommand(CLI::App& app);
  UiCommand(const UiCommand&) = delete;
  UiCommand& operator=(const UiCommand&) = delete;

  explicit operator bool() const { return static_cast<bool>(*command_); }

  // Returns the exit status: 0 ok, 1 no UI listener (or its file unreadable), 2 usage, 3 daemon
  // not running.
  int run(bool json) const;

 private:
  CLI::App* command_;
  std::string name_;
  bool print_only_ = false;
};

}  // namespace photon::cli
