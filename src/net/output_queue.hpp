// A connection's queue of lines waiting to be written, with the slow-consumer policy that bounds
// it (Redis's pub/sub client-output-buffer-limit: a hard bound, and a soft bound held too long).
#pragma once

#include "common/clock.hpp"
#include "common/defaults.hpp"
#include "common/shared_bytes.hpp"

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace photon::net {

struct OutputLimits {
  std::size_t hard_bytes = defaults::kOutputHardBytes;
  std::size_t soft_bytes = defaults::kOutputSoftBytes;
  std::chrono::steady_clock::duration soft_duration = defaults::kOutputSoftTime;
};

// Lines are held in chunks. A shared line (a fan-out) stays shared: the queue keeps a reference,
// not a copy (measured: copying fan-out lines into per-connection buffers was slower). A small
// line of the connection's own (a reply) is appended to an owned tail buffer, so a burst of
// pipelined replies is one chunk and one iovec rather than one allocation and iovec each.
//
// Invariants: bytes() is the sum of the unwritten bytes of all chunks; front_offset_ < size of
// the front chunk; over_soft_since_ is set only while bytes() > soft_bytes; only the back chunk
// grows.
// Thread rule: one thread (the connection's).
class OutputQueue {
 public:
  // Owned lines up to this size are copied into the tail buffer; longer ones become a chunk.
  static constexpr std::size_t kCopyLimit = 2048;
  // A tail buffer stops growing at this size and a new one is started.
  static constexpr std::size_t kTailCapacity = 64 * 1024;

  // `clock` must outlive the queue; it is read only while the queue is over the soft bound.
  OutputQueue(OutputLimits limits, const Clock& clock) : limits_(limits), clock_(&clock) {}
  // A queue that held at least kReleaseAfterBytes since it was last empty tells
  // note_memory_freed (common/memory_release.hpp) when it drains or is dropped (destroyed or
  // assigned over), so the daemon can give that memory back.
  ~OutputQueue() { note_drained(); }
  OutputQueue(OutputQueue&& other) noexcept;
  OutputQueue& operator=(OutputQueue&& other) noexcept;
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  // Appends a line. Returns false when the queue is now past its bounds: over the hard bound, or
  // over the soft bound continuously for soft_duration. The line is queued either way.
  bool push(SharedBytes line);
  bool push(std::string line);

  // Fills up to `max` iovecs with the unwritten bytes, in order; returns how many it filled. The
  // iovecs are valid until the next push or consume.
  std::size_t gather(iovec* vectors, std::size_t max) const;

  // Marks `count` bytes (from the front) as written.
  void consume(std::size_t count);

  std::size_t bytes() const { return bytes_; }
  // Since when the queue has been over the soft bound, if it is now.
  std::optional<std::chrono::steady_clock::time_point> over_soft_since() const {
    return over_soft_since_;
  }
  // Whether it has been over the soft bound for the whole soft duration by now.
  bool past_soft_duration() const {
    return over_soft_since_ && clock_->steady() - *over_soft_since_ >= limits_.soft_duration;
  }
  bool empty() const { return chunks_.empty(); }

 private:
  struct Chunk {
    SharedBytes shared;  // set for a referenced line
    std::string owned;   // used otherwise
    std::string_view view() const { return shared ? std::string_view(*shared) : owned; }
  };

  void append_to_tail(std::string_view line);
  bool account(std::size_t added);
  // Reports a large peak to note_memory_freed and forgets it.
  void note_drained();

  OutputLimits limits_;
  const Clock* clock_;
  std::deque<Chunk> chunks_;
  std::size_t front_offset_ = 0;
  std::size_t bytes_ = 0;
  std::size_t peak_bytes_ = 0;  // the most bytes() held since the queue was last empty
  std::optional<std::chrono::steady_clock::time_point> over_soft_since_;
};

}  // namespace photon::net
