// The app every photonctl command hangs on, the refusal of an unknown command, and the mapping
// of what a command throws to its message and exit status.
#include "cli/command_line.hpp"

#include "cli/prompter.hpp"
#include "cli/suggest.hpp"
#include "common/exit_codes.hpp"
#include "common/units.hpp"
#include "photon/client.hpp"

#include <algorithm>
#include <iostream>
#include <optional>
#include <string_view>

namespace photon::cli {
namespace {

// The first word that is not a top-level flag, when it names no command: refused with the
// nearest command, as git and systemctl do, instead of CLI11's "arguments were not expected".
std::optional<int> refuse_unknown_command(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> commands;
  for (const CLI::App* command : app.get_subcommands({})) commands.push_back(command->get_name());
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word.starts_with("-")) {
      if (word == "--json") continue;
      return std::nullopt;  // --help, --version, or CLI11's own error for an unknown flag
    }
    if (std::find(commands.begin(), commands.end(), word) != commands.end()) return std::nullopt;
    std::cerr << "photonctl: unknown command \"" << word << "\"";
    if (auto nearest = nearest_word(word, commands)) {
      std::cerr << "; did you mean " << *nearest << "?";
    }
    std::cerr << "\nRun 'photonctl --help' for the list of commands.\n";
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace

std::chrono::milliseconds duration_flag(const std::string& text, const char* flag) {
  auto value = parse_duration(text);
  if (!value) throw UsageError(std::string(flag) + ": invalid duration \"" + text + "\"");
  return *value;
}

CommandLine::CommandLine(std::string description, std::string version, std::string footer)
    : app_(std::move(description)) {
  app_.require_subcommand(1);
  app_.add_flag("--json", globals_.json, "Print JSON for scripts instead of text")
      ->configurable(false);
  app_.set_version_flag("--version", version);
  app_.footer(std::move(footer));
  app_.fallthrough();
}

CLI::App* CommandLine::add(const std::string& command, const std::string& description,
                           std::function<int()> run) {
  CLI::App* subcommand = app_.add_subcommand(command, description);
  add_runner([subcommand] { return static_cast<bool>(*subcommand); }, std::move(run));
  return subcommand;
}

void CommandLine::add_runner(std::function<bool()> chosen, std::function<int()> run) {
  runners_.push_back({std::move(chosen), std::move(run)});
}

int CommandLine::run(int argc, char** argv) {
  if (auto refused = refuse_unknown_command(app_, argc, argv)) return *refused;
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app_.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }

  try {
    for (const Runner& runner : runners_) {
      if (runner.chosen()) return runner.run();
    }
  } catch (const UsageError& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitUsage;
  } catch (const AnswerError& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitUsage;
  } catch (const ClientError& error) {
    if (error.kind() == ClientError::Kind::kNotRunning) {
      std::cerr << "photonctl: " << name_ << " is not running (" << error.what() << ")\n";
      return kExitNotRunning;
    }
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  } catch (const std::exception& error) {
    std::cerr << "photonctl: " << error.what() << "\n";
    return kExitFailed;
  }
  return kExitUsage;
}

}  // namespace photon::cli
