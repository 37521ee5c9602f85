// A connection's queue of lines waiting to be written, with the slow-consumer policy that bounds
// it (Redis's pub/sub client-output-buffer-limit: a hard bound, and a soft bound held too long).
#pragma once

#include "common/shared_bytes.hpp"

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>

namespace photon::net {

struct OutputLimits {
  std::size_t hard_bytes = 32u << 20;
  std::size_t soft_bytes = 8u << 20;
  std::chrono::steady_clock::duration soft_duration = std::chrono::seconds(60);
};

// Invariants: bytes() is the sum of the unwritten bytes of all chunks; front_offset_ < size of
// the front chunk; over_soft_since_ is set exactly while bytes() > soft_bytes.
// Thread rule: one thread (the connection's).
class OutputQueue {
 public:
  explicit OutputQueue(OutputLimits limits) : limits_(limits) {}

  // Appends a line. Returns false when the queue is now past its bounds: over the hard bound, or
  // over the soft bound continuously for soft_duration as of `now`. The line is queued either way.
  bool push(SharedBytes line, std::chrono::steady_clock::time_point now);

  // Fills up to `max` iovecs with the unwritten bytes, in order; returns how many it filled.
  std::size_t gather(iovec* vectors, std::size_t max) const;

  // Marks `count` bytes (from the front) as written.
  void consume(std::size_t count);

  std::size_t bytes() const { return bytes_; }
  bool empty() const { return chunks_.empty(); }

 private:
  OutputLimits limits_;
  std::deque<SharedBytes> chunks_;
  std::size_t front_offset_ = 0;
  std::size_t bytes_ = 0;
  std::optional<std::chrono::steady_clock::time_point> over_soft_since_;
};

}  // namespace photon::net
