// The exit codes of photond and photonctl (and of programs embedding a photon), one list for both
// binaries; docs/operations.md gives their meaning to scripts.
#pragma once

namespace photon {

// Unscoped so that main() and the commands return it as the int they are.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,      // refused or failed (the message says why)
  kExitUsage = 2,       // bad command line
  kExitNotRunning = 3,  // photonctl: the daemon is not running
  // photonctl lock: the lock is busy, try again later (EX_TEMPFAIL, as flock(1) -E and lockfile
  // tools use it).
  kExitNotAcquired = 75,
};

}  // namespace photon
