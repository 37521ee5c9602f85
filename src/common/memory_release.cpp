// Memory release after large frees: noted by the output queues, done on the loop by malloc_trim.
#include "common/memory_release.hpp"

#include <malloc.h>

#include <utility>

namespace photon {
namespace {

struct ReleaseState {
  std::function<void()> schedule;
  std::size_t freed = 0;   // noted since the last release
  bool requested = false;  // a release is scheduled and has not run yet
};

ReleaseState& state() {
  static ReleaseState instance;
  return instance;
}

}  // namespace

void note_memory_freed(std::size_t bytes) {
  ReleaseState& s = state();
  s.freed += bytes;
  if (s.requested || !s.schedule) return;
  s.requested = true;
  s.schedule();
}

void set_memory_release_scheduler(std::function<void()> schedule) {
  ReleaseState& s = state();
  s.schedule = std::move(schedule);
  s.requested = false;
}

std::size_t release_freed_memory() {
  ReleaseState& s = state();
  s.requested = false;
  ::malloc_trim(0);
  return std::exchange(s.freed, 0);
}

}  // namespace photon
