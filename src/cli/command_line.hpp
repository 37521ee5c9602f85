// photonctl's command line: the app with the flags every command shares, each subcommand with what
// it runs once chosen, and the one place where an error becomes a message and an exit status.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace photon::cli {

// A command line that cannot be run as written: its message on stderr, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The flags of photonctl itself, given before or after the command.
struct Globals {
  bool json = false;
};

// Parses a duration flag ("500ms", "5s", "10m"); throws UsageError naming `flag` otherwise.
std::chrono::milliseconds duration_flag(const std::string& text, const char* flag);

// The subcommands and their runners. Each command family's add_* function registers its commands
// here (src/cli/*_command.hpp); main registers them in the order --help lists them, then calls
// run().
// Lifetime: must outlive the parse; the options a runner captures live as long as it does.
class CommandLine {
 public:
  CommandLine(std::string description, std::string version, std::string footer);
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  CLI::App& app() { return app_; }
  const Globals& globals() const { return globals_; }
  // The photon NAME argument: a command that takes one binds it here, so that an error can name
  // the photon ("NAME is not running").
  std::string& name() { return name_; }

  // Adds subcommand `command`; `run` is called after parsing when the command line chose it, and
  // returns the exit status.
  CLI::App* add(const std::string& command, const std::string& description,
                std::function<int()> run);
  // Runs `run` when `chosen()` says the command line chose a subcommand registered elsewhere (the
  // command classes that add themselves to app()).
  void add_runner(std::function<bool()> chosen, std::function<int()> run);

  // Parses the command line and runs the chosen command. Returns the exit status: the command's,
  // 2 for usage errors, 1 for a refusal or failure, 3 when the daemon is not running (each with
  // its message on stderr).
  int run(int argc, char** argv);

 private:
  struct Runner {
    std::function<bool()> chosen;
    std::function<int()> run;
  };

  CLI::App app_;
  Globals globals_;
  std::string name_;
  std::vector<Runner> runners_;
};

}  // namespace photon::cli
