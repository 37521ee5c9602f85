// The spellings of the job enums, each in one table read both ways.
#include "jobs/job_words.hpp"

#include <array>
#include <utility>

namespace photon::core {
namespace {

template <typename Enum, std::size_t N>
using Table = std::array<std::pair<Enum, std::string_view>, N>;

constexpr Table<CatchUp, 2> kCatchUp{{{CatchUp::kLatest, "latest"}, {CatchUp::kSkip, "skip"}}};
constexpr Table<Overlap, 2> kOverlap{{{Overlap::kSkip, "skip"}, {Overlap::kAllow, "allow"}}};
constexpr Table<RunStatus, 8> kRunStatus{{{RunStatus::kRunning, "running"},
                                          {RunStatus::kOk, "ok"},
                                          {RunStatus::kFailed, "failed"},
                                          {RunStatus::kTimedOut, "timed_out"},
                                          {RunStatus::kCancelled, "cancelled"},
                                          {RunStatus::kSkipped, "skipped"},
                                          {RunStatus::kMissed, "missed"},
                                          {RunStatus::kInvalid, "invalid"}}};
constexpr Table<Trigger, 3> kTrigger{{{Trigger::kSchedule, "schedule"},
                                      {Trigger::kCatchUp, "catch-up"},
                                      {Trigger::kManual, "manual"}}};

template <typename Enum, std::size_t N>
std::string_view spell(const Table<Enum, N>& table, Enum value) {
  for (const auto& [entry, text] : table) {
    if (entry == value) return text;
  }
  return "?";
}

template <typename Enum, std::size_t N>
std::optional<Enum> read(const Table<Enum, N>& table, std::string_view text) {
  for (const auto& [entry, spelling] : table) {
    if (spelling == text) return entry;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(CatchUp value) { return spell(kCatchUp, value); }
std::string_view to_string(Overlap value) { return spell(kOverlap, value); }
std::string_view to_string(RunStatus value) { return spell(kRunStatus, value); }
std::string_view to_string(Trigger value) { return spell(kTrigger, value); }

std::optional<CatchUp> parse_catch_up(std::string_view text) { return read(kCatchUp, text); }
std::optional<Overlap> parse_overlap(std::string_view text) { return read(kOverlap, text); }
std::optional<RunStatus> parse_run_status(std::string_view text) { return read(kRunStatus, text); }
std::optional<Trigger> parse_trigger(std::string_view text) { return read(kTrigger, text); }

}  // namespace photon::core
