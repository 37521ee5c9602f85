// Immutable bytes shared by every queue they are written to: a fan-out serializes once.
#pragma once

#include <memory>
#include <string>

namespace photon {

using SharedBytes = std::shared_ptr<const std::string>;

inline SharedBytes make_shared_bytes(std::string bytes) {
  return std::make_shared<const std::string>(std::move(bytes));
}

}  // namespace photon
