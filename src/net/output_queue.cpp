// Output queue bookkeeping and the slow-consumer verdict.
#include "net/output_queue.hpp"

namespace photon::net {

bool OutputQueue::push(SharedBytes line, std::chrono::steady_clock::time_point now) {
  if (line->empty()) return true;
  bytes_ += line->size();
  chunks_.push_back(std::move(line));
  if (bytes_ > limits_.hard_bytes) return false;
  if (bytes_ <= limits_.soft_bytes) {
    over_soft_since_.reset();
    return true;
  }
  if (!over_soft_since_) over_soft_since_ = now;
  return now - *over_soft_since_ < limits_.soft_duration;
}

std::size_t OutputQueue::gather(iovec* vectors, std::size_t max) const {
  std::size_t filled = 0;
  std::size_t offset = front_offset_;
  for (auto it = chunks_.begin(); it != chunks_.end() && filled < max; ++it, ++filled) {
    const std::string& chunk = **it;
    vectors[filled].iov_base = const_cast<char*>(chunk.data() + offset);
    vectors[filled].iov_len = chunk.size() - offset;
    offset = 0;
  }
  return filled;
}

void OutputQueue::consume(std::size_t count) {
  bytes_ -= count;
  while (count > 0) {
    const std::size_t left_in_front = chunks_.front()->size() - front_offset_;
    if (count < left_in_front) {
      front_offset_ += count;
      break;
    }
    count -= left_in_front;
    chunks_.pop_front();
    front_offset_ = 0;
  }
  if (bytes_ <= limits_.soft_bytes) over_soft_since_.reset();
}

}  // namespace photon::net
