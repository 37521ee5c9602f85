// The manifest of an exec photon: a TOML file naming the scripts that are its methods, with their
// timeouts, working directories and environments (the format: docs/methods.md (Exec photons)).
#pragma once

#include "jobs/scheduler.hpp"
#include "methods/method_host.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace photon::core {

// A manifest that cannot be read or is not valid. what() is "FILE:LINE:COL: what is wrong" (just
// "FILE: ..." when the file cannot be read at all).
class ManifestError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

// One method of an exec photon: a child process per call.
struct ExecMethod {
  MethodInfo info;
  // What to run. A manifest's string command becomes {"/bin/sh", "-c", command}. argv[0] is
  // looked up in PATH when it has no '/', else taken relative to working_dir.
  std::vector<std::string> argv;
  std::chrono::milliseconds timeout{60000};
  std::filesystem::path working_dir;  // absolute
  // Added to the daemon's environment, replacing variables of the same name.
  std::vector<std::pair<std::string, std::string>> env;
  std::size_t max_concurrent = 0;  // calls of this method at once; 0: no per-method limit
  bool interactive = false;        // stdin stays open for prompt answers
};

struct Manifest {
  std::filesystem::path file;  // absolute
  std::string description;
  std::vector<ExecMethod> methods;  // in the order the file declares them
  // Cron jobs the photon declares ([jobs.ID]): present from start, restored at every start.
  std::vector<JobSpec> jobs;
};

// Reads, parses and validates a manifest. Relative working directories are resolved against the
// manifest's directory (the default working directory), which must exist.
// Throws ManifestError on any problem: unreadable file, TOML syntax, an unknown key (so typos are
// caught), a value of the wrong type or out of range, a bad method name, no methods at all.
// Reads the disk: for start-up, not for the event loop. Any thread.
Manifest load_manifest(const std::filesystem::path& file);

// The same from text already read; `file` names it in messages and anchors relative paths.
Manifest parse_manifest(std::string_view text, const std::filesystem::path& file);

}  // namespace photon::core
