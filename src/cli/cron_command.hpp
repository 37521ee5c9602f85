// photonctl cron: the next fire times of a cron expression, computed here (no daemon involved), so
// a schedule can be checked before a job uses it.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace photon::cli {

// The `cron` subcommand. Construct it beside the other subcommands (it registers itself on `app`
// and must outlive the parse); after parsing, `if (cron) return cron.run(json);`.
class CronCommand {
 public:
  explicit CronCommand(CLI::App& app);
  CronCommand(const CronCommand&) = delete;
  CronCommand& operator=(const CronCommand&) = delete;

  // True when the command line chose `cron`.
  explicit operator bool() const { return static_cast<bool>(*command_); }

  // Prints the next fire times, one per line as local time with offset and abbreviation
  // (`2026-11-27 09:00:00 -0500 EST`), or one JSON object with `json`. Returns the exit status:
  // 0, 1 for a bad expression or zone (the message on stderr), 2 for a bad --after.
  int run(bool json) const;

 private:
  CLI::App* command_;
  std::string expression_;
  std::string zone_;
  int count_ = 5;
  std::optional<std::string> after_;
};

}  // namespace photon::cli
