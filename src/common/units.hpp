// Parsing of the durations and byte sizes that flags take ("500ms", "30s", "10m"; "8m", "32MiB").
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace photon {

// "250ms", "30s", "10m", "1h", "2d", or a plain number of seconds. Nothing on malformed input,
// a negative value or overflow.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// A byte count with an optional binary suffix: "1048576", "64k", "8m", "1g" (also "KiB", "MB",
// ... all meaning powers of 1024). Nothing on malformed input or overflow.
std::optional<std::size_t> parse_bytes(std::string_view text);

// The shortest text parse_bytes reads back as `bytes`: "1m", "64k", "1000".
std::string format_bytes(std::size_t bytes);

// The shortest text parse_duration reads back as `duration`: "5m", "60s", "1500ms".
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace photon
