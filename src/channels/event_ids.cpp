// Event ids: drawing the epoch, writing an id, and reading one back strictly (one spelling each).
#include "channels/event_ids.hpp"

#include <charconv>
#include <random>

namespace photon::core {
namespace {

std::string random_epoch() {
  std::random_device random;
  const std::uint64_t bits = (std::uint64_t{random()} << 32 | random()) & 0xffff'ffff'ffffULL;
  char text[13];
  const auto end = std::to_chars(text, text + 12, bits, 16).ptr;
  // Zero-padded to 12 digits, so every epoch has one length.
  std::string epoch(12 - static_cast<std::size_t>(end - text), '0');
  epoch.append(text, end);
  return epoch;
}

}  // namespace

EventIds::EventIds(std::string epoch) : epoch_(epoch.empty() ? random_epoch() : std::move(epoch)) {}

std::string EventIds::id_of(std::uint64_t sequence) const {
  std::string id = epoch_;
  id += '-';
  id += std::to_string(sequence);
  return id;
}

std::uint64_t EventIds::carry(std::string id) {
  const std::uint64_t sequence = next_++;
  carried_up_to_ = sequence;
  carried_.insert_or_assign(std::move(id), sequence);
  return sequence;
}

std::optional<std::uint64_t> EventIds::sequence_of(std::string_view id) const {
  if (id.size() <= epoch_.size() + 1 || !id.starts_with(epoch_) || id[epoch_.size()] != '-') {
    if (carried_.empty()) return std::nullopt;
    const auto carried = carried_.find(std::string(id));
    if (carried == carried_.end()) return std::nullopt;
    return carried->second;
  }
  const std::string_view digits = id.substr(epoch_.size() + 1);
  // One spelling per event: "E-07" is not "E-7".
  if (digits.starts_with('0')) return std::nullopt;
  std::uint64_t sequence = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), sequence);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  // This run's own ids start after the messages carried from earlier runs.
  if (sequence <= carried_up_to_ || sequence >= next_) return std::nullopt;
  return sequence;
}

}  // namespace photon::core
