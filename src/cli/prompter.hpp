// How photonctl call answers a method's prompts: from --answer values, from the terminal, or by
// declining.
#pragma once

#include "photon/client.hpp"

#include <boost/json/value.hpp>

#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace photon::cli {

// Answers prompts with the scripted answers first, in order; once they run out, asks on the
// terminal when `terminal` (stdin is one), else declines. Questions, scripted answers and
// refusals are written to stderr, so stdout carries only the method's result.
// Not thread-safe; used from inside Client::call.
class Prompter {
 public:
  Prompter(std::vector<std::string> answers, bool terminal);

  // The answer to `prompt`, or nothing to decline it (end of input on the terminal, or no
  // answer left).
  std::optional<boost::json::value> answer(const PromptRequest& prompt);

 private:
  std::optional<boost::json::value> ask(const PromptRequest& prompt);

  std::deque<std::string> answers_;
  bool terminal_;
};

// An --answer the prompt cannot take (a select answered with none of its options). The prompt is
// declined and photonctl exits 2 with this message, which lists the options.
class AnswerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A scripted answer as the method receives it: for confirm, y/yes/true and n/no/false are
// booleans; for select, an option's value, label or number (from 1) is that option's value, and
// anything else throws AnswerError (a select with no options takes any answer); otherwise
// loose_json(text).
boost::json::value scripted_answer(const PromptRequest& prompt, const std::string& text);

}  // namespace photon::cli
