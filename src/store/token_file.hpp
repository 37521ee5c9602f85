// Durable storage of the fencing-token high-water mark (daemons/NAME.tokens), so tokens keep
// increasing across restarts and crashes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace photon::store {

// The mark stored at `path`: 0 when the file does not exist. Throws std::runtime_error when the
// file exists but cannot be read or does not hold a number (starting over could reissue tokens).
std::uint64_t load_token_mark(const std::filesystem::path& path);

// Replaces the mark at `path` atomically and durably (write a temporary file, fsync, rename,
// fsync the directory). Returns an error message on failure, in which case the old mark stands.
std::optional<std::string> save_token_mark(const std::filesystem::path& path, std::uint64_t mark);

}  // namespace photon::store
