// Writing a file so that readers see the old content or the new one, never a part: a temporary
// file beside it, written (and synced when asked), then renamed over it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace photon {

// The temporary file's name is the target's with this suffix.
inline constexpr std::string_view kTemporarySuffix = ".tmp";

// Replaces `name` in the directory open as `dir_fd` with `text`, created with `mode`. A leftover
// temporary of an earlier crash is removed first. `durable`: the file is fsynced before the
// rename and the directory after, so the new content survives a power loss. Never follows a
// symbolic link at the temporary's name. Returns nothing on success, else what failed (paths shown
// as `shown_dir`/NAME), with the temporary removed and the old file untouched.
std::optional<std::string> write_file_atomically(int dir_fd, std::string_view name,
                                                 std::string_view text, bool durable,
                                                 mode_t mode = 0600,
                                                 std::string_view shown_dir = "");

}  // namespace photon
