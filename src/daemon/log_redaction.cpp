// Log redaction: registered secret values and secret-named parameters, replaced in every line.
#include "daemon/log_redaction.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace photon::daemon {
namespace {

constexpr std::array<std::string_view, 5> kSecretNames = {"token", "access_token", "secret",
                                                          "password", "api_key"};

// Where a parameter's name begins (after one of these) and where its value ends (at one of those).
constexpr std::string_view kNameStarts = "?&#;/ \t\"'<>,([{";
constexpr std::string_view kValueEnds = "&#; \t\r\n\"'<>,)]}";

struct Secrets {
  std::mutex mutex;
  std::vector<std::string> values;
};

Secrets& secrets() {
  static Secrets instance;
  return instance;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// Percent-decoded ("%74oken"), '+' as a space, lower-cased: as a handler would read the name.
std::string decoded_name(std::string_view name) {
  std::string decoded;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%' && i + 2 < name.size() && hex_value(name[i + 1]) >= 0 &&
        hex_value(name[i + 2]) >= 0) {
      decoded.push_back(
          lower(static_cast<char>(hex_value(name[i + 1]) * 16 + hex_value(name[i + 2]))));
      i += 2;
    } else {
      decoded.push_back(name[i] == '+' ? ' ' : lower(name[i]));
    }
  }
  return decoded;
}

std::string redact_parameters(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  std::size_t copied = 0;  // line[0, copied) is in `out`
  std::size_t name_start = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (kNameStarts.find(c) != std::string_view::npos) {
      name_start = i + 1;
      continue;
    }
    if (c != '=' || i == name_start) continue;
    const std::string name = decoded_name(line.substr(name_start, i - name_start));
    if (std::find(kSecretNames.begin(), kSecretNames.end(), name) == kSecretNames.end()) continue;
    std::size_t end = line.find_first_of(kValueEnds, i + 1);
    if (end == std::string_view::npos) end = line.size();
    out.append(line.substr(copied, i + 1 - copied)).append("redacted");
    copied = end;
    i = end - 1;  // the delimiter (if any) is looked at next
    name_start = end;
  }
  out.append(line.substr(copied));
  return out;
}

// Replaces each occurrence of `secret` in `text`, ignoring ASCII case.
void redact_value(std::string& text, std::string_view secret) {
  if (secret.empty()) return;
  const auto same = [](char a, char b) { return lower(a) == lower(b); };
  std::string out;
  auto from = text.begin();
  for (;;) {
    const auto found = std::search(from, text.end(), secret.begin(), secret.end(), same);
    out.append(from, found);
    if (found == text.end()) break;
    out.append("[redacted]");
    from = found + static_cast<std::ptrdiff_t>(secret.size());
  }
  text = std::move(out);
}

}  // namespace

void add_log_secret(std::string secret) {
  if (secret.empty()) return;
  Secrets& all = secrets();
  std::lock_guard lock(all.mutex);
  if (std::find(all.values.begin(), all.values.end(), secret) == all.values.end()) {
    all.values.push_back(std::move(secret));
  }
}

std::string redact_log_line(std::string_view line) {
  std::string text = redact_parameters(line);
  Secrets& all = secrets();
  std::lock_guard lock(all.mutex);
  for (const std::string& secret : all.values) redact_value(text, secret);
  return text;
}

void RedactingSink::log(const spdlog::details::log_msg& message) {
  const std::string_view payload(message.payload.data(), message.payload.size());
  const std::string redacted = redact_log_line(payload);
  spdlog::details::log_msg copy = message;
  copy.payload = spdlog::string_view_t(redacted.data(), redacted.size());
  std::lock_guard lock(mutex_);
  for (const spdlog::sink_ptr& sink : sinks_) {
    if (sink->should_log(copy.level)) sink->log(copy);
  }
}

void RedactingSink::flush() {
  std::lock_guard lock(mutex_);
  for (const spdlog::sink_ptr& sink : sinks_) sink->flush();
}

void RedactingSink::set_pattern(const std::string& pattern) {
  std::lock_guard lock(mutex_);
  for (const spdlog::sink_ptr& sink : sinks_) sink->set_pattern(pattern);
}

void RedactingSink::set_formatter(std::unique_ptr<spdlog::formatter> formatter) {
  std::lock_guard lock(mutex_);
  for (const spdlog::sink_ptr& sink : sinks_) sink->set_formatter(formatter->clone());
}

}  // namespace photon::daemon
