// Output queue bookkeeping, tail-buffer coalescing and the slow-consumer verdict.
#include "net/output_queue.hpp"

#include "common/memory_release.hpp"

#include <algorithm>
#include <utility>

namespace photon::net {
namespace {

// A fresh tail buffer starts this big, so a burst of small lines does not reallocate it often.
constexpr std::size_t kInitialTail = 4096;

}  // namespace

OutputQueue::OutputQueue(OutputQueue&& other) noexcept
    : limits_(other.limits_),
      clock_(other.clock_),
      chunks_(std::move(other.chunks_)),
      front_offset_(std::exchange(other.front_offset_, 0)),
      bytes_(std::exchange(other.bytes_, 0)),
      peak_bytes_(std::exchange(other.peak_bytes_, 0)),
      over_soft_since_(std::exchange(other.over_soft_since_, std::nullopt)) {
  other.chunks_.clear();
}

OutputQueue& OutputQueue::operator=(OutputQueue&& other) noexcept {
  if (this == &other) return *this;
  note_drained();
  limits_ = other.limits_;
  clock_ = other.clock_;
  chunks_ = std::move(other.chunks_);
  other.chunks_.clear();
  front_offset_ = std::exchange(other.front_offset_, 0);
  bytes_ = std::exchange(other.bytes_, 0);
  peak_bytes_ = std::exchange(other.peak_bytes_, 0);
  over_soft_since_ = std::exchange(other.over_soft_since_, std::nullopt);
  return *this;
}

void OutputQueue::note_drained() {
  if (peak_bytes_ >= kReleaseAfterBytes) note_memory_freed(peak_bytes_);
  peak_bytes_ = 0;
}

bool OutputQueue::push(SharedBytes line) {
  if (line->empty()) return true;
  const std::size_t size = line->size();
  chunks_.push_back(Chunk{std::move(line), {}});
  return account(size);
}

bool OutputQueue::push(std::string line) {
  if (line.empty()) return true;
  const std::size_t size = line.size();
  if (size <= kCopyLimit) {
    append_to_tail(line);
  } else {
    chunks_.push_back(Chunk{nullptr, std::move(line)});
  }
  return account(size);
}

void OutputQueue::append_to_tail(std::string_view line) {
  if (chunks_.empty() || chunks_.back().shared ||
      chunks_.back().owned.size() + line.size() > kTailCapacity) {
    Chunk tail;
    tail.owned.reserve(std::max(kInitialTail, line.size()));
    chunks_.push_back(std::move(tail));
  }
  chunks_.back().owned.append(line);
}

bool OutputQueue::account(std::size_t added) {
  bytes_ += added;
  peak_bytes_ = std::max(peak_bytes_, bytes_);
  if (bytes_ > limits_.hard_bytes) return false;
  if (bytes_ <= limits_.soft_bytes) {
    over_soft_since_.reset();
    return true;
  }
  const auto now = clock_->steady();
  if (!over_soft_since_) over_soft_since_ = now;
  return now - *over_soft_since_ < limits_.soft_duration;
}

std::size_t OutputQueue::gather(iovec* vectors, std::size_t max) const {
  std::size_t filled = 0;
  std::size_t offset = front_offset_;
  for (auto it = chunks_.begin(); it != chunks_.end() && filled < max; ++it, ++filled) {
    const std::string_view chunk = it->view();
    vectors[filled].iov_base = const_cast<char*>(chunk.data() + offset);
    vectors[filled].iov_len = chunk.size() - offset;
    offset = 0;
  }
  return filled;
}

void OutputQueue::consume(std::size_t count) {
  bytes_ -= count;
  while (count > 0) {
    const std::size_t left_in_front = chunks_.front().view().size() - front_offset_;
    if (count < left_in_front) {
      front_offset_ += count;
      break;
    }
    count -= left_in_front;
    chunks_.pop_front();
    front_offset_ = 0;
  }
  if (bytes_ <= limits_.soft_bytes) over_soft_since_.reset();
  if (bytes_ == 0) note_drained();
}

}  // namespace photon::net
