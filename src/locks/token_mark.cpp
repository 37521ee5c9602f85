// Grouped, durable saves of the fencing-token high-water mark.
#include "locks/token_mark.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace photon::core {

TokenMark::TokenMark(std::uint64_t durable, Persist persist, Background background)
    : durable_(durable),
      highest_(durable),
      persist_(std::move(persist)),
      background_(std::move(background)) {}

void TokenMark::observe(std::uint64_t token) { highest_ = std::max(highest_, token); }

void TokenMark::cover(std::uint64_t token, Done done) {
  if (token <= durable_) return done(std::nullopt);
  highest_ = std::max(highest_, token);
  waiting_.emplace(token, std::move(done));
  if (!saving_) start_save();
}

void TokenMark::start_save() {
  saving_ = true;
  const std::uint64_t mark = highest_;
  // The work owns what it uses: it may still run on the other thread after this object is gone.
  auto error = std::make_shared<std::optional<std::string>>();
  background_([persist = persist_, mark, error] { *error = persist(mark); },
              [alive = std::weak_ptr<TokenMark*>(self_), mark, error] {
                if (auto owner = alive.lock()) (*owner)->saved(mark, *error);
              });
}

void TokenMark::saved(std::uint64_t mark, const std::optional<std::string>& error) {
  saving_ = false;
  if (!error) durable_ = std::max(durable_, mark);
  // Everything this save was for is answered, with its outcome; later tokens wait for the next.
  std::vector<Done> answered;
  auto end = waiting_.upper_bound(mark);
  for (auto it = waiting_.begin(); it != end; ++it) answered.push_back(std::move(it->second));
  waiting_.erase(waiting_.begin(), end);
  if (!waiting_.empty()) start_save();
  const std::weak_ptr<TokenMark*> alive = self_;
  for (Done& done : answered) {
    done(error);
    if (alive.expired()) return;  // a callback destroyed the daemon's services
  }
}

}  // namespace photon::core
