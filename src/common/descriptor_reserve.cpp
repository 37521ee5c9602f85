// The descriptor reserve: /dev/null descriptors closed just before a rare open that must not fail.
#include "common/descriptor_reserve.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <mutex>
#include <vector>

namespace photon {
namespace {

struct Reserve {
  std::mutex mutex;
  std::size_t wanted = 0;
  std::vector<int> held;

  // Opens descriptors until `wanted` are held or an open fails. Called with `mutex` held.
  void fill() {
    while (held.size() < wanted) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return;
      held.push_back(fd);
    }
  }
};

Reserve& reserve() {
  static Reserve instance;
  return instance;
}

}  // namespace

std::size_t reserve_descriptors(std::size_t count) {
  Reserve& r = reserve();
  std::lock_guard lock(r.mutex);
  r.wanted = count;
  r.fill();
  return r.held.size();
}

std::size_t reserved_descriptors() {
  Reserve& r = reserve();
  std::lock_guard lock(r.mutex);
  return r.held.size();
}

namespace detail {

void release_reserve() {
  Reserve& r = reserve();
  r.mutex.lock();
  for (const int fd : r.held) ::close(fd);
  r.held.clear();
}

void restore_reserve() {
  Reserve& r = reserve();
  r.fill();
  r.mutex.unlock();
}

}  // namespace detail
}  // namespace photon
