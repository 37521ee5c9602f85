// Prompt answers for photonctl call: scripted ones, and questions on the terminal (a password is
// read with echo off, restored even when a signal ends photonctl meanwhile).
#include "cli/prompter.hpp"

#include "cli/json_text.hpp"
#include "common/text.hpp"

#include <boost/json.hpp>

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <iostream>

namespace photon::cli {
namespace {

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::optional<bool> yes_no(std::string_view text) {
  const std::string word = ascii_lower(trimmed(text));
  if (word == "y" || word == "yes" || word == "true") return true;
  if (word == "n" || word == "no" || word == "false") return false;
  return std::nullopt;
}

// Option `index`'s value as the method gave it, so a non-string value keeps its type.
boost::json::value option_value(const PromptRequest& prompt, std::size_t index) {
  const auto* options = prompt.raw.if_contains("options");
  if (options != nullptr && options->is_array() && index < options->get_array().size()) {
    const boost::json::value& option = options->get_array()[index];
    if (!option.is_object()) return option;
    if (const auto* value = option.get_object().if_contains("value")) return *value;
  }
  return boost::json::string(prompt.options[index].value);
}

// The option `text` names by value, by label, or by number (from 1).
std::optional<boost::json::value> chosen_option(const PromptRequest& prompt,
                                                std::string_view text) {
  text = trimmed(text);
  for (std::size_t i = 0; i < prompt.options.size(); ++i) {
    if (prompt.options[i].value == text) return option_value(prompt, i);
  }
  for (std::size_t i = 0; i < prompt.options.size(); ++i) {
    if (prompt.options[i].label == text) return option_value(prompt, i);
  }
  std::size_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error == std::errc() && end == text.data() + text.size() && number >= 1 &&
      number <= prompt.options.size()) {
    return option_value(prompt, number - 1);
  }
  return std::nullopt;
}

// A value as a person reads it: strings without quotes.
std::string shown(const boost::json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : boost::json::serialize(value);
}

std::string question(const PromptRequest& prompt) {
  return "? " + (prompt.message.empty() ? std::string("answer") : prompt.message);
}

// Signals that end photonctl while echo is off; their handler restores the terminal first.
constexpr std::array kFatalSignals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};
termios saved_terminal;

void restore_and_reraise(int signo) {
  ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_terminal);
  ::raise(signo);  // delivered on return, with the default action (SA_RESETHAND)
}

// Terminal echo off for the scope of one password.
class EchoOff {
 public:
  EchoOff() {
    if (::tcgetattr(STDIN_FILENO, &saved_terminal) != 0) return;
    struct sigaction restore {};
    restore.sa_handler = &restore_and_reraise;
    restore.sa_flags = SA_RESETHAND;
    ::sigemptyset(&restore.sa_mask);
    for (std::size_t i = 0; i < kFatalSignals.size(); ++i) {
      ::sigaction(kFatalSignals[i], &restore, &previous_[i]);
    }
    termios quiet = saved_terminal;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_terminal);
    for (std::size_t i = 0; i < kFatalSignals.size(); ++i) {
      ::sigaction(kFatalSignals[i], &previous_[i], nullptr);
    }
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  bool active_ = false;
  std::array<struct sigaction, kFatalSignals.size()> previous_{};
};

// Shows `question` and returns the line typed on the terminal, or nothing at end of input. A
// secret's echo goes off before the question shows, so nothing typed ahead is echoed.
std::optional<std::string> read_answer(const std::string& question, bool secret) {
  std::string line;
  bool read = false;
  if (secret) {
    EchoOff quiet;
    std::cerr << question << std::flush;
    read = static_cast<bool>(std::getline(std::cin, line));
    std::cerr << "\n";  // the Enter was not echoed either
  } else {
    std::cerr << question << std::flush;
    read = static_cast<bool>(std::getline(std::cin, line));
  }
  if (!read) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

boost::json::value scripted_answer(const PromptRequest& prompt, const std::string& text) {
  if (prompt.type == "confirm") {
    if (auto yes = yes_no(text)) return *yes;
  } else if (prompt.type == "select" && !prompt.options.empty()) {
    if (auto chosen = chosen_option(prompt, text)) return std::move(*chosen);
    std::string options;
    for (std::size_t i = 0; i < prompt.options.size(); ++i) {
      options += (i == 0 ? "" : ", ") + std::to_string(i + 1) + ") " + prompt.options[i].value;
      if (prompt.options[i].label != prompt.options[i].value) {
        options += " (" + prompt.options[i].label + ")";
      }
    }
    throw AnswerError("--answer \"" + text + "\" is not an option of \"" + prompt.message +
                      "\"; choose a value, label or number: " + options);
  }
  return loose_json(text);
}

Prompter::Prompter(std::vector<std::string> answers, bool terminal)
    : answers_(answers.begin(), answers.end()), terminal_(terminal) {}

std::optional<boost::json::value> Prompter::answer(const PromptRequest& prompt) {
  if (!answers_.empty()) {
    boost::json::value value = scripted_answer(prompt, answers_.front());
    answers_.pop_front();
    std::cerr << question(prompt) << " "
              << (prompt.type == "password" ? std::string("********") : shown(value)) << "\n";
    return value;
  }
  if (terminal_) return ask(prompt);
  std::cerr << question(prompt) << " (declined: no --answer left)\n";
  return std::nullopt;
}

std::optional<boost::json::value> Prompter::ask(const PromptRequest& prompt) {
  const bool has_default = !prompt.default_value.is_null();
  const bool select = prompt.type == "select" && !prompt.options.empty();
  std::string ask_line = question(prompt);
  if (prompt.type == "confirm") {
    const bool yes = prompt.default_value.is_bool() && prompt.default_value.get_bool();
    const bool no = prompt.default_value.is_bool() && !prompt.default_value.get_bool();
    ask_line += yes ? " [Y/n] " : no ? " [y/N] " : " [y/n] ";
  } else if (select) {
    std::cerr << ask_line << "\n";
    for (std::size_t i = 0; i < prompt.options.size(); ++i) {
      std::cerr << "  " << i + 1 << ") " << prompt.options[i].label << "\n";
    }
    ask_line = "  choose 1-" + std::to_string(prompt.options.size());
    ask_line += has_default ? " [" + shown(prompt.default_value) + "]: " : ": ";
  } else if (has_default && prompt.type != "password") {
    ask_line += " [" + shown(prompt.default_value) + "]: ";
  } else {
    ask_line += ": ";
  }

  for (;;) {
    std::optional<std::string> line = read_answer(ask_line, prompt.type == "password");
    if (!line) {
      std::cerr << "\n";
      return std::nullopt;
    }
    if (trimmed(*line).empty() && has_default) return prompt.default_value;
    if (prompt.type == "confirm") {
      if (auto yes = yes_no(*line)) return boost::json::value(*yes);
      std::cerr << "  please answer y or n\n";
    } else if (select) {
      if (auto chosen = chosen_option(prompt, *line)) return std::move(*chosen);
      std::cerr << "  please choose a number from 1 to " << prompt.options.size()
                << " or an option's value\n";
    } else {
      return boost::json::value(boost::json::string(*line));
    }
  }
}

}  // namespace photon::cli
