// The daemon's log redaction: secrets never reach a log line, at any level, in any position.
#include "daemon/log_redaction.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace photon::daemon {
namespace {

constexpr std::string_view kToken =
    "b2a5c0ffee00112233445566778899aabbccddeeff00112233445566778899aa";

std::string lowered(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

TEST(LogRedaction, SecretNamedParametersAnywhere) {
  EXPECT_EQ(redact_log_line("req 7: GET /api/status#token=abc -> 400"),
            "req 7: GET /api/status#token=redacted -> 400");
  EXPECT_EQ(redact_log_line("GET /a?x=1&token=abc&y=2"), "GET /a?x=1&token=redacted&y=2");
  // A value runs to the next '&', '#', ';', space or quote: what follows a path parameter's '?'
  // may still be part of the secret, so it goes too.
  EXPECT_EQ(redact_log_line("GET /a;token=abc?b=1 -> 404"), "GET /a;token=redacted -> 404");
  EXPECT_EQ(redact_log_line("GET /a?%74oken=abc"), "GET /a?%74oken=redacted");
  EXPECT_EQ(redact_log_line("GET /a?ACCESS_TOKEN=abc&Password=x&api_key=k&secret=s"),
            "GET /a?ACCESS_TOKEN=redacted&Password=redacted&api_key=redacted&secret=redacted");
  EXPECT_EQ(redact_log_line("token=abc"), "token=redacted");
  // Other parameters and text stay as they are.
  EXPECT_EQ(redact_log_line("GET /events?channel=board:*&last=4 -> 200"),
            "GET /events?channel=board:*&last=4 -> 200");
  EXPECT_EQ(redact_log_line("mytoken=abc tokens=3"), "mytoken=abc tokens=3");
}

TEST(LogRedaction, RegisteredSecretsAtEveryLevel) {
  add_log_secret(std::string(kToken));
  std::ostringstream written;
  auto inner = std::make_shared<spdlog::sinks::ostream_sink_st>(written);
  spdlog::logger logger("test",
                        std::make_shared<RedactingSink>(std::vector<spdlog::sink_ptr>{inner}));
  logger.set_level(spdlog::level::trace);
  logger.set_pattern("%l %v");
  const std::vector<std::string> lines = {
      "req 7: GET /api/status#token=" + std::string(kToken) + " -> 400",
      "req 8: GET /api/status/" + std::string(kToken) + " -> 404",
      "req 9: GET /ws?t=" + upper(kToken) + " -> 401",
      "header Authorization: Bearer " + std::string(kToken),
      "a method printed " + std::string(kToken) + std::string(kToken),
  };
  const std::vector<spdlog::level::level_enum> levels = {
      spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
      spdlog::level::warn,  spdlog::level::err,   spdlog::level::critical};
  for (const auto level : levels) {
    for (const std::string& line : lines) logger.log(level, line);
  }
  const std::string log = written.str();
  EXPECT_EQ(lowered(log).find(lowered(std::string(kToken))), std::string::npos) << log;
  // Every line was written (at each level), with the secret replaced.
  for (const auto level : levels) {
    const std::string name(spdlog::level::to_string_view(level).data(),
                           spdlog::level::to_string_view(level).size());
    EXPECT_NE(log.find(name + " req 7: GET /api/status#token=redacted -> 400\n"), std::string::npos)
        << name;
    EXPECT_NE(log.find(name + " req 8: GET /api/status/[redacted] -> 404\n"), std::string::npos)
        << name;
    EXPECT_NE(log.find(name + " a method printed [redacted][redacted]\n"), std::string::npos)
        << name;
  }
}

}  // namespace
}  // namespace photon::daemon
