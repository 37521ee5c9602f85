// photonctl service: writes or removes a photon's systemd user units (see service_command.hpp).
#include "cli/service_command.hpp"

#include "common/atomic_file.hpp"
#include "common/exit_codes.hpp"
#include "common/paths.hpp"
#include "common/units.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <vector>

namespace photon::cli {
namespace fs = std::filesystem;

namespace {

// The packaged units name the daemon at its installed path; install names the one it runs with.
constexpr std::string_view kPackagedDaemon = "/usr/bin/photond";
// The drop-in files install writes: one per instance and unit, so uninstall knows its own.
constexpr std::string_view kDropInFile = "photonctl.conf";
constexpr std::string_view kDropInHeader =
    "# Written by `photonctl service install`; `photonctl service uninstall` removes it.\n";

struct Refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// $XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user: where systemd looks for a user's
// units.
fs::path user_unit_dir() {
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config != nullptr && *config == '/') {
    return fs::path(config) / "systemd" / "user";
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') throw Refused("HOME is not set: cannot find ~/.config");
  return fs::path(home) / ".config" / "systemd" / "user";
}

// `text` with systemd's specifier character escaped (% expands in every unit setting).
std::string no_specifiers(std::string_view text) {
  std::string out;
  for (const char c : text) {
    out += c;
    if (c == '%') out += '%';
  }
  return out;
}

// One word of ExecStart=: specifiers and variables escaped, quoted when it has spaces or quotes.
std::string exec_word(std::string_view word) {
  std::string escaped;
  bool quote = word.empty();
  for (const char c : word) {
    if (c == '%')
      escaped += "%%";
    else if (c == '$')
      escaped += "$$";
    else if (c == '\\' || c == '"')
      escaped += std::string("\\") + c;
    else
      escaped += c;
    if (c == ' ' || c == '\t' || c == '\'' || c == '"' || c == '\\' || c == ';') quote = true;
  }
  return quote ? "\"" + escaped + "\"" : escaped;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` to `path` (creating its directory) unless it holds that already; true if written.
bool write_file(const fs::path& path, const std::string& text) {
  std::error_code ec;
  if (fs::exists(path, ec) && read_file(path) == text) return false;
  fs::create_directories(path.parent_path(), ec);
  if (ec) throw Refused("cannot create " + path.parent_path().string() + ": " + ec.message());
  const std::string directory = path.parent_path().string();
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    throw Refused("cannot open " + directory + ": " + std::generic_category().message(errno));
  }
  // Units are read by the service manager, not secret: world-readable as systemctl writes them.
  auto error = write_file_atomically(dir_fd, path.filename().string(), text, true, 0644, directory);
  ::close(dir_fd);
  if (error) throw Refused(*error);
  return true;
}

// Removes `file` and then its directory when that is left empty; true if the file was there.
bool remove_drop_in(const fs::path& file) {
  std::error_code ec;
  const bool removed = fs::remove(file, ec);
  if (ec) throw Refused("cannot remove " + file.string() + ": " + ec.message());
  if (fs::is_empty(file.parent_path(), ec) && !ec) fs::remove(file.parent_path(), ec);
  return removed;
}

std::string instance_unit(const std::string& name, std::string_view kind) {
  return "photond@" + name + "." + std::string(kind);
}

void print_commands(bool json, const std::vector<std::string>& written,
                    const std::vector<std::string>& commands, const std::string& note,
                    boost::json::object out) {
  if (json) {
    boost::json::array files(written.begin(), written.end());
    boost::json::array run(commands.begin(), commands.end());
    out["files"] = std::move(files);
    out["commands"] = std::move(run);
    std::cout << boost::json::serialize(out) << "\n";
    return;
  }
  for (const auto& file : written) std::cout << file << "\n";
  std::cout << "\nNow run:\n";
  for (const auto& command : commands) std::cout << "  " << command << "\n";
  if (!note.empty()) std::cout << "\n" << note << "\n";
}

}  // namespace

ServiceCommand::ServiceCommand(CLI::App& app) {
  command_ = app.add_subcommand("service", "Install or remove the systemd user units of a photon");
  command_->require_subcommand(1);
  command_->footer(
      "The units start the photon's daemon at its first client's connect (socket activation)\n"
      "and let it exit after --idle-timeout; see docs/operations.md. Files go to\n"
      "$XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user); photonctl prints the\n"
      "systemctl --user commands to run and runs none itself.\n"
      "Exit status: 0 done, 1 refused, 2 usage.");
  install_ = command_->add_subcommand("install", "Write the units of photon NAME");
  install_->add_option("name", name_, "Photon name")->required();
  install_->add_option("--manifest", manifest_,
                       "Serve the methods of this TOML manifest (its absolute path is written)");
  install_
      ->add_option("--idle-timeout", idle_timeout_,
                   "The daemon exits after this long without clients; 0 = never")
      ->capture_default_str();
  uninstall_ = command_->add_subcommand("uninstall", "Remove the units of photon NAME");
  uninstall_->add_option("name", name_, "Photon name")->required();
}

int ServiceCommand::run(bool json, const std::string& photond) const {
  try {
    if (auto error = photon_name_error(name_)) throw Usage(*error);
    return *install_ ? install(json, photond) : uninstall(json);
  } catch (const Usage& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitUsage;
  } catch (const Refused& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  }
}

int ServiceCommand::install(bool json, const std::string& photond) const {
  if (!parse_duration(idle_timeout_)) {
    throw Usage("--idle-timeout: invalid duration \"" + idle_timeout_ + "\"");
  }
  std::error_code ec;
  const fs::path daemon = fs::absolute(photond, ec);
  if (ec || ::access(daemon.c_str(), X_OK) != 0) {
    throw Refused("cannot find photond (looked for " + photond + ")");
  }
  std::string manifest;
  if (!manifest_.empty()) {
    const fs::path path = fs::weakly_canonical(fs::absolute(manifest_), ec);
    if (ec || !fs::is_regular_file(path)) throw Usage("--manifest: no such file: " + manifest_);
    manifest = path.string();
  }
  const fs::path photon_dir = fs::absolute(photon::photon_dir());
  const fs::path socket = photon_dir / "daemons" / (name_ + ".sock");
  const fs::path units = user_unit_dir();

  std::string service(service_unit_template());
  if (auto at = service.find(kPackagedDaemon); at != std::string::npos) {
    service.replace(at, kPackagedDaemon.size(), exec_word(daemon.string()));
  }
  std::string exec = "ExecStart=" + exec_word(daemon.string()) + " serve %i";
  if (!manifest.empty()) exec += " --manifest " + exec_word(manifest);
  exec += " --idle-timeout " + exec_word(idle_timeout_);
  const std::string service_drop_in = std::string(kDropInHeader) + "[Service]\nEnvironment=" +
                                      exec_word("PHOTON_DIR=" + photon_dir.string()) +
                                      "\nExecStart=\n" + exec + "\n";
  const std::string socket_drop_in =
      std::string(kDropInHeader) +
      "[Socket]\nListenStream=\nListenStream=" + no_specifiers(socket.string()) + "\n";

  const std::vector<std::pair<fs::path, std::string>> files = {
      {units / "photond@.service", service},
      {units / "photond@.socket", std::string(socket_unit_template())},
      {units / (instance_unit(name_, "service") + ".d") / kDropInFile, service_drop_in},
      {units / (instance_unit(name_, "socket") + ".d") / kDropInFile, socket_drop_in},
  };
  std::vector<std::string> written;
  for (const auto& [path, text] : files) {
    write_file(path, text);
    written.push_back(path.string());
  }
  const std::vector<std::string> commands = {
      "systemctl --user daemon-reload",
      "systemctl --user enable --now " + instance_unit(name_, "socket"),
  };
  std::string note = "The first client's connect to " + socket.string() +
                     " starts the daemon.\n"
                     "Logs: journalctl --user -u " +
                     instance_unit(name_, "service") + " (and photonctl logs " + name_ + ").";
  if (fs::exists(photon_dir / "daemons" / (name_ + ".pid"), ec)) {
    note += "\nA daemon of " + name_ + " may be running now: stop it first (photonctl stop " +
            name_ + "), so the socket unit can take its socket.";
  }
  print_commands(json, written, commands, note,
                 {{"installed", true}, {"name", name_}, {"socket", socket.string()}});
  return kExitOk;
}

int ServiceCommand::uninstall(bool json) const {
  const fs::path units = user_unit_dir();
  const std::string socket_unit = instance_unit(name_, "socket");
  const fs::path service_drop_in = units / (instance_unit(name_, "service") + ".d") / kDropInFile;
  const fs::path socket_drop_in = units / (socket_unit + ".d") / kDropInFile;
  std::error_code ec;
  if (!fs::exists(service_drop_in, ec) && !fs::exists(socket_drop_in, ec)) {
    throw Refused("the units of " + name_ + " are not installed (no " + service_drop_in.string() +
                  ")");
  }
  // Disabling needs the unit files; once they are gone systemctl could not find what to disable.
  for (const char* target : {"sockets.target.wants", "default.target.wants"}) {
    if (fs::exists(fs::symlink_status(units / target / socket_unit, ec))) {
      throw Refused(socket_unit + " is enabled: run `systemctl --user disable --now " +
                    socket_unit + " " + instance_unit(name_, "service") + "` first");
    }
  }
  std::vector<std::string> removed;
  for (const fs::path& file : {service_drop_in, socket_drop_in}) {
    if (remove_drop_in(file)) removed.push_back(file.string());
  }
  // The templates go with the last photon installed.
  bool others = false;
  for (const auto& entry : fs::directory_iterator(units, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.starts_with("photond@") && file.ends_with(".d") && file != "photond@.service.d" &&
        file != "photond@.socket.d" && fs::exists(entry.path() / kDropInFile, ec)) {
      others = true;
    }
  }
  if (!others) {
    for (const char* unit : {"photond@.service", "photond@.socket"}) {
      if (fs::remove(units / unit, ec)) removed.push_back((units / unit).string());
    }
  }
  print_commands(json, removed, {"systemctl --user daemon-reload"}, "",
                 {{"uninstalled", true}, {"name", name_}});
  return kExitOk;
}

}  // namespace photon::cli
