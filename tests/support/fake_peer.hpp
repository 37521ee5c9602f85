// An in-memory peer for driving the dispatcher without sockets: records every line sent to it.
#pragma once

#include "net/peer.hpp"

#include <string>
#include <vector>

namespace photon::testing {

class FakePeer final : public net::Peer {
 public:
  void send(SharedBytes line) override { lines.emplace_back(*line); }
  void send(std::string line) override { lines.push_back(std::move(line)); }
  void close_after_flush() override { closing = true; }

  // Returns and forgets what was sent so far.
  std::vector<std::string> take() { return std::exchange(lines, {}); }

  std::vector<std::string> lines;
  bool closing = false;
};

}  // namespace photon::testing
