// The high-water mark of the fencing tokens a daemon hands out when another party (the broker)
// issues them: a token reaches a client only once the mark on disk covers it, so a daemon,
// restarted after a crash, still asks for tokens above every one it handed out.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace photon::core {

// Invariants: durable_ <= highest_; every waiting token is above durable_; at most one save is
// in flight, and it writes highest_ as it was when it started (tokens raised meanwhile wait for
// the next save, which covers them all: one disk write per group, not per token).
// Thread rule: the event loop thread only; `persist` runs where `background` runs it.
class TokenMark {
 public:
  // Writes `mark` durably, blocking (e.g. store::save_token_mark); an error message on failure,
  // in which case the previous mark stands.
  using Persist = std::function<std::optional<std::string>(std::uint64_t mark)>;
  // Runs `work` off the event loop thread, then `then` on it.
  using Background = std::function<void(std::function<void()> work, std::function<void()> then)>;
  // nullopt: the token is covered; else why the mark could not be written.
  using Done = std::function<void(std::optional<std::string> error)>;

  // `durable`: the mark on disk at start (0 for none).
  TokenMark(std::uint64_t durable, Persist persist, Background background);
  TokenMark(const TokenMark&) = delete;
  TokenMark& operator=(const TokenMark&) = delete;

  // What every new token must exceed: the highest token this daemon handed out, is about to
  // hand out, or saw (another holder's), and the mark on disk.
  std::uint64_t floor() const { return highest_; }

  // A token seen but not handed out here (another holder's): raises floor(), and goes to disk
  // with the next save, without a save of its own.
  void observe(std::uint64_t token);

  // Calls `done` once the mark on disk is at least `token`: at once (before returning) when it
  // is already, else on the loop thread after a save; with the error of that save if it failed
  // (the next cover() tries again). Never called after this object is destroyed.
  void cover(std::uint64_t token, Done done);

  // The mark known to be on disk.
  std::uint64_t durable() const { return durable_; }

 private:
  void start_save();
  void saved(std::uint64_t mark, const std::optional<std::string>& error);

  std::uint64_t durable_;
  std::uint64_t highest_;
  Persist persist_;
  Background background_;
  bool saving_ = false;
  std::multimap<std::uint64_t, Done> waiting_;  // by token
  std::shared_ptr<TokenMark*> self_ = std::make_shared<TokenMark*>(this);
};

}  // namespace photon::core
