// A few file descriptors held back for the code that must open a file at a moment when the process
// may have none left (every descriptor taken by connections): the tz database, whose listing the
// date library reads once and keeps for good, even when it came back empty.
#pragma once

#include <cstddef>
#include <utility>

namespace photon {

// From now on, holds up to `count` descriptors (on /dev/null, close-on-exec) in reserve. Returns
// how many it holds. Called once at daemon start; any thread.
std::size_t reserve_descriptors(std::size_t count);

// How many descriptors are held in reserve now.
std::size_t reserved_descriptors();

namespace detail {
void release_reserve();  // closes the reserved descriptors (and takes the reserve's mutex)
void restore_reserve();  // opens them again, as many as it can (and releases the mutex)
}  // namespace detail

// Runs `work` with the reserved descriptors closed, so that the files it opens can take their
// numbers, and reserves them again afterwards (as many as can be opened then; the rest at the next
// call). Without a reserve it simply runs `work`. Calls are serialized across threads; `work` must
// not call this again.
template <class Work>
decltype(auto) with_reserved_descriptors(Work&& work) {
  struct Released {
    Released() { detail::release_reserve(); }
    ~Released() { detail::restore_reserve(); }
    Released(const Released&) = delete;
    Released& operator=(const Released&) = delete;
  } released;
  return std::forward<Work>(work)();
}

}  // namespace photon
