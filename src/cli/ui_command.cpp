// photonctl ui: asks the daemon for its UI listener, reads the token file, prints the URL and,
// where a desktop session is there to show it, opens it with xdg-open (or $BROWSER).
#include "cli/ui_command.hpp"

#include "cli/json_text.hpp"
#include "common/exit_codes.hpp"
#include "common/paths.hpp"
#include "common/private_dir.hpp"
#include "photon/client.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

extern char** environ;

namespace photon::cli {
namespace json = boost::json;

namespace {

// The program that opens URLs here, or empty when there is no desktop session to open one in.
std::string opener() {
  if (const char* browser = std::getenv("BROWSER"); browser != nullptr && *browser != '\0') {
    return browser;
  }
  if (std::getenv("DISPLAY") == nullptr && std::getenv("WAYLAND_DISPLAY") == nullptr) return {};
  if (::access("/usr/bin/xdg-open", X_OK) == 0) return "/usr/bin/xdg-open";
  return {};
}

// Writes a page that forwards to `address` (0600, in the private daemons/ directory) and returns
// its file:// URL, or nothing when it cannot be written.
std::optional<std::string> write_redirect(const PrivateDir& dir, const std::filesystem::path& file,
                                          const std::string& address) {
  // `address` is http://127.0.0.1:PORT/#token=HEX: nothing in it needs escaping in HTML or JS.
  const std::string page =
      "<!doctype html>\n<meta charset=\"utf-8\">\n<meta name=\"referrer\" "
      "content=\"no-referrer\">\n"
      "<title>photond dashboard</title>\n"
      "<meta http-equiv=\"refresh\" content=\"0;url=" +
      address +
      "\">\n"
      "<script>location.replace(\"" +
      address +
      "\")</script>\n"
      "<p><a href=\"" +
      address + "\">Open the dashboard</a></p>\n";
  // Through the daemons directory's descriptor, created 0600 exclusively and renamed into place.
  if (dir.replace_file(file.filename().string(), page, false)) return std::nullopt;
  return "file://" + std::filesystem::absolute(file).string();
}

// The whole content of regular file `name` in `dir` (never through a symlink), or nothing.
std::optional<std::string> read_private_file(const PrivateDir& dir, const std::string& name) {
  int fd = -1;
  try {
    fd = dir.open_file(name, O_RDONLY);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string text;
  char buffer[4096];
  ssize_t count = 0;
  while ((count = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, count);
  ::close(fd);
  if (count < 0) return std::nullopt;
  return text;
}

// Starts `program URL` without waiting for the browser; true when it started.
bool open_in_browser(const std::string& program, const std::string& url) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // The browser's own chatter would mix with photonctl's output.
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::string program_copy = program;
  std::string url_copy = url;
  char* argv[] = {program_copy.data(), url_copy.data(), nullptr};
  pid_t pid = 0;
  const int error = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return false;
  // xdg-open hands the URL to the browser and exits; a $BROWSER that stays is not waited for.
  int status = 0;
  for (int tries = 0; tries < 50; ++tries) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    ::usleep(20'000);
  }
  return true;
}

}  // namespace

UiCommand::UiCommand(CLI::App& app) {
  command_ = app.add_subcommand("ui", "Open (or print) the dashboard of photon NAME");
  command_->add_option("name", name_, "Photon name")->required();
  command_->add_flag("--print", print_only_, "Only print the URL, do not open a browser");
  command_->footer(
      "The daemon serves the dashboard when started with --ui-port N (or $PHOTON_UI_PORT). The\n"
      "URL carries the daemon's token after '#', which browsers do not send to servers or keep\n"
      "in Referer headers; the page keeps it for the tab only. Anyone with the URL can use the\n"
      "daemon as you can: do not share it. The browser is opened with $BROWSER, else xdg-open\n"
      "when a desktop session is there, on a private page ($PHOTON_DIR/daemons/NAME.ui.html)\n"
      "that forwards to the URL, so that the token is not on a command line other users can\n"
      "read; otherwise the URL is only printed.\n"
      "Exit status: 0 ok, 1 no UI listener, 2 usage, 3 daemon not running.");
}

int UiCommand::run(bool as_json) const {
  if (auto error = photon::photon_name_error(name_)) {
    std::cerr << "photonctl: " << *error << "\n";
    return kExitUsage;
  }
  json::object status;
  try {
    status = photon::Client::connect(name_).status();
  } catch (const photon::ClientError& error) {
    if (error.kind() == photon::ClientError::Kind::kNotRunning) {
      std::cerr << "photonctl: " << name_ << " is not running (" << error.what() << ")\n";
      return kExitNotRunning;
    }
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  }
  const json::value* ui = status.if_contains("ui");
  if (ui == nullptr || !ui->is_object()) {
    std::cerr << "photonctl: photon " << name_
              << " has no UI listener: start it with --ui-port N (or PHOTON_UI_PORT)\n";
    return kExitFailed;
  }
  const std::string url = string_member(ui->get_object(), "url");
  const PhotonPaths paths = photon::photon_paths(name_);
  const auto file = paths.ui_file;
  // Connecting checked the directory; it is opened once more and its files read through it.
  std::optional<PrivateDir> dir;
  try {
    dir = PrivateDir::open_trusted(paths.daemons_dir);
  } catch (const std::exception& error) {
    std::cerr << "photonctl: refusing to read " << file.string() << ": " << error.what() << "\n";
    return kExitFailed;
  }
  const std::optional<std::string> text =
      dir ? read_private_file(*dir, file.filename().string()) : std::nullopt;
  boost::system::error_code ec;
  json::value saved = text ? json::parse(*text, ec) : json::value();
  if (!text || ec || !saved.is_object() || string_member(saved.get_object(), "url") != url) {
    std::cerr << "photonctl: cannot read the UI token from " << file.string()
              << " (it belongs to the daemon's owner)\n";
    return kExitFailed;
  }
  const std::string address = url + "#token=" + string_member(saved.get_object(), "token");
  bool opened = false;
  if (!print_only_) {
    if (const std::string program = opener(); !program.empty()) {
      // Not the address itself: the browser's arguments are readable by every local user.
      if (auto page = write_redirect(*dir, paths.ui_redirect_file, address)) {
        opened = open_in_browser(program, *page);
      }
    }
  }
  if (as_json) {
    std::cout << json::serialize(json::object{{"url", address}, {"opened", opened}}) << "\n";
  } else {
    std::cout << address << "\n";
    if (opened) std::cerr << "opened in your browser\n";
  }
  return kExitOk;
}

}  // namespace photon::cli
