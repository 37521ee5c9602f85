// The one place where secrets are kept out of the daemon's log: every line, at every level and
// from every part of the daemon, passes through a RedactingSink before it is written.
#pragma once

#include <spdlog/sinks/sink.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace photon::daemon {

// Adds `secret` (the UI token, a webhook secret, a broker password) to the values that never
// appear in a log line; empty ones are ignored. Any thread, any time.
void add_log_secret(std::string secret);

// `line` as it may be logged: every occurrence of a registered secret (compared ignoring ASCII
// case) becomes "[redacted]", and the value of every `name=value` whose name, percent-decoded and
// ignoring case, is token, access_token, secret, password or api_key becomes "redacted", wherever
// it stands (a query, a fragment, a path parameter, free text). Other text is left as it is.
std::string redact_log_line(std::string_view line);

// A sink that redacts each message (redact_log_line) and hands it to `sinks`. Formatting is the
// inner sinks' own. Thread-safe: messages are passed on under one mutex.
class RedactingSink final : public spdlog::sinks::sink {
 public:
  explicit RedactingSink(std::vector<spdlog::sink_ptr> sinks) : sinks_(std::move(sinks)) {}

  void log(const spdlog::details::log_msg& message) override;
  void flush() override;
  void set_pattern(const std::string& pattern) override;
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;

 private:
  std::mutex mutex_;
  std::vector<spdlog::sink_ptr> sinks_;
};

}  // namespace photon::daemon
