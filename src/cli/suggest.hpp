// "did you mean ...?": the known word nearest to a mistyped one, as git and systemctl suggest.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace photon::cli {

// The candidate `word` most likely meant, or nothing when none is close. A candidate that `word`
// starts with wins (`subscribe` -> `sub`, `publish` -> `pub`; the longest such), then one that
// starts with `word` (`stat` -> `status`), then the one at the smallest edit distance, if that is
// at most a third of the word's length (at least 1): `lcok` -> `lock`, `xyz` -> nothing.
// Ties go to the earlier candidate.
std::optional<std::string> nearest_word(std::string_view word,
                                        const std::vector<std::string>& candidates);

}  // namespace photon::cli
