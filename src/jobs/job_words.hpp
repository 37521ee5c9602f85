// The words of jobs: a run's status and trigger and a job's catch-up and overlap policies, as
// enums with one to_string and one parse each. The wire, the job store, the broker's records and
// photonctl all use these spellings.
#pragma once

#include <optional>
#include <string_view>

namespace photon::core {

enum class CatchUp { kLatest, kSkip };  // a missed slot: run once for the latest, or skip it
enum class Overlap { kSkip, kAllow };   // a slot due while the last run still runs

// What a run is or became. kInvalid is a job's last status only (its method or zone is unknown).
enum class RunStatus { kRunning, kOk, kFailed, kTimedOut, kCancelled, kSkipped, kMissed, kInvalid };

// Why a run started.
enum class Trigger { kSchedule, kCatchUp, kManual };

// "latest", "skip"; "skip", "allow"; "running", "ok", "failed", "timed_out", "cancelled",
// "skipped", "missed", "invalid"; "schedule", "catch-up", "manual".
std::string_view to_string(CatchUp value);
std::string_view to_string(Overlap value);
std::string_view to_string(RunStatus value);
std::string_view to_string(Trigger value);

// The value `text` spells, or nothing for any other text.
std::optional<CatchUp> parse_catch_up(std::string_view text);
std::optional<Overlap> parse_overlap(std::string_view text);
std::optional<RunStatus> parse_run_status(std::string_view text);
std::optional<Trigger> parse_trigger(std::string_view text);

}  // namespace photon::core
