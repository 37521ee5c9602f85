// Where a photon's files live ($PHOTON_DIR/daemons/NAME.{sock,pid,log,...}) and which names are
// allowed, shared by the daemon, the client library and photonctl so all three agree.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace photon {

// The daemon's files for one photon. All paths are absolute or relative to the process's cwd
// exactly as $PHOTON_DIR is.
struct PhotonPaths {
  std::filesystem::path daemons_dir;
  std::filesystem::path socket;
  std::filesystem::path pid_file;
  std::filesystem::path log_file;
  std::filesystem::path token_file;  // fencing-token high-water mark
  std::filesystem::path job_db;      // cron jobs and their runs (SQLite)
  std::filesystem::path ui_file;     // the browser listener's URL and token (0600, while it runs)
  // A page that forwards to the dashboard with its token, for `photonctl ui` to open: a browser's
  // command line is visible to every local user, a file name is not a secret.
  std::filesystem::path ui_redirect_file;
};

// Returns an empty optional when `name` is a valid photon name ([A-Za-z0-9][A-Za-z0-9._-]{0,63}),
// else a sentence saying what is wrong with it.
std::optional<std::string> photon_name_error(std::string_view name);

// $PHOTON_DIR, else $HOME/.photon, else ./.photon when HOME is unset.
std::filesystem::path photon_dir();

// The files of photon `name` under photon_dir(). `name` must be valid (see photon_name_error).
PhotonPaths photon_paths(std::string_view name);

}  // namespace photon
