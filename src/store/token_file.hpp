// Durable storage of the fencing-token high-water mark (daemons/NAME.tokens), so tokens keep
// increasing across restarts and crashes.
#pragma once

#include "common/private_dir.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace photon::store {

// The mark stored in entry `name` of `dir`: 0 when it does not exist. Throws std::runtime_error
// when it exists but cannot be read, is not a regular file (a symlink is never followed) or does
// not hold a number (starting over could reissue tokens).
std::uint64_t load_token_mark(const PrivateDir& dir, std::string_view name);

// Replaces the mark in entry `name` of `dir` atomically and durably (NAME.tmp created exclusively,
// fsync, renameat, fsync of the directory). Returns an error message on failure, in which case
// the old mark stands.
std::optional<std::string> save_token_mark(const PrivateDir& dir, std::string_view name,
                                           std::uint64_t mark);

}  // namespace photon::store
