// photonctl's exit statuses, as its --help footer lists them.
#pragma once

namespace photon::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // refused or failed
constexpr int kExitUsage = 2;
constexpr int kExitNotRunning = 3;
// EX_TEMPFAIL, as flock(1) -E and lockfile tools use it: the lock is busy, try again later.
constexpr int kExitNotAcquired = 75;

}  // namespace photon::cli
