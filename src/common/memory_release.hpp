// Heap memory given back to the system once a burst is over. glibc keeps freed memory in its heap
// for reuse; after a slow consumer's 32 MiB queue is dropped, that is tens of MB of resident memory
// the daemon may never need again. malloc_trim(0) returns every free page; it walks the heap, so it
// runs once after large frees (a queue of at least kReleaseAfterBytes drained or dropped), when the
// loop gets to a short timer, never per message.
#pragma once

#include <cstddef>
#include <functional>

namespace photon {

// Frees smaller than this are left to malloc's own trimming.
inline constexpr std::size_t kReleaseAfterBytes = 1u << 20;

// Records that about `bytes` (at least kReleaseAfterBytes) of heap were freed. The first call
// since the last release asks the installed scheduler to have release_freed_memory() called later;
// without one, nothing happens. Thread rule: the event loop thread.
void note_memory_freed(std::size_t bytes);

// How the daemon is asked to call release_freed_memory() soon (a short timer on its loop); an
// empty function uninstalls it. Thread rule: the event loop thread.
void set_memory_release_scheduler(std::function<void()> schedule);

// Gives the heap's free pages back to the system (malloc_trim(0)). Returns the bytes noted freed
// since the last release. Thread rule: the event loop thread.
std::size_t release_freed_memory();

}  // namespace photon
