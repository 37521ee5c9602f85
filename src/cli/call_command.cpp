// photonctl call NAME METHOD [key=value...] and methods NAME: a call's arguments, session,
// prompts and progress, and its result printed for a person or a script.
#include "cli/call_command.hpp"

#include "cli/connect.hpp"
#include "cli/exit_codes.hpp"
#include "cli/json_text.hpp"
#include "cli/print.hpp"
#include "cli/prompter.hpp"
#include "cli/table.hpp"
#include "photon/client.hpp"

#include <boost/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>

namespace photon::cli {

boost::json::object call_args(const std::vector<std::string>& pairs,
                              const std::optional<std::string>& args_json) {
  boost::json::object args;
  if (args_json) {
    boost::system::error_code ec;
    boost::json::value base = boost::json::parse(*args_json, ec);
    if (ec || !base.is_object()) throw UsageError("--args must be a JSON object");
    args = std::move(base.get_object());
  }
  for (const auto& pair : pairs) {
    const auto equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw UsageError("argument \"" + pair + "\" is not key=value");
    }
    args[pair.substr(0, equals)] =
        photon::cli::loose_json(std::string_view(pair).substr(equals + 1));
  }
  return args;
}

namespace {

// The daemon's session for requests that name none: photon instance state shared by every caller
// that does not choose a session.
constexpr const char* kDefaultSession = "default";

// A progress event on stderr: "… 50% copying" when it has a message (and a percent), else its JSON.
void print_progress(const boost::json::object& event) {
  const auto* message = event.if_contains("message");
  if (message == nullptr || !message->is_string()) {
    std::cerr << "… " << boost::json::serialize(event) << "\n";
    return;
  }
  std::cerr << "… ";
  if (const auto* percent = event.if_contains("percent"); percent && percent->is_number()) {
    std::cerr << boost::json::serialize(*percent) << "% ";
  }
  std::cerr << std::string_view(message->get_string()) << "\n";
}

int cmd_call(const Globals& globals, const std::string& name, const std::string& method,
             const std::vector<std::string>& pairs, const std::optional<std::string>& args_json,
             const std::optional<std::string>& session, const std::vector<std::string>& answers,
             const std::optional<std::string>& timeout_text) {
  check_name(name);
  if (method.empty()) throw UsageError("METHOD must not be empty");
  const boost::json::object args = call_args(pairs, args_json);
  photon::ClientOptions options;
  if (session) {
    if (session->empty()) throw UsageError("--session must not be empty");
    options.session_id = *session;
  } else if (const char* fixed = std::getenv("PHOTON_SESSION_ID"); fixed && *fixed != '\0') {
    options.session_id = fixed;
  } else {
    options.session_id = kDefaultSession;
  }
  photon::CallOptions call;
  call.client_type = "cli";
  if (timeout_text) {
    call.timeout = duration_flag(*timeout_text, "--timeout");
    if (call.timeout.count() <= 0) throw UsageError("--timeout must be positive");
  }
  photon::cli::Prompter prompter(answers, ::isatty(STDIN_FILENO) == 1);
  call.on_prompt = [&prompter](const photon::PromptRequest& prompt) {
    return prompter.answer(prompt);
  };
  call.on_emit = print_progress;

  photon::Client client = photon::Client::connect(name, options);
  const boost::json::value result = client.call(method, args, std::move(call));
  if (globals.json)
    print_json(result);
  else if (result.is_string())
    std::cout << std::string_view(result.get_string()) << "\n";
  else if (!result.is_null())
    std::cout << photon::cli::pretty_json(result) << "\n";
  return kExitOk;
}

int cmd_methods(const Globals& globals, const std::string& name) {
  const std::vector<photon::MethodDescription> methods = connect(name).list_methods();
  if (globals.json) {
    boost::json::array all;
    for (const auto& method : methods) {
      boost::json::array params;
      for (const auto& param : method.params) {
        params.push_back({{"name", param.name},
                          {"type", param.type},
                          {"description", param.description},
                          {"required", param.required}});
      }
      all.push_back({{"name", method.name},
                     {"description", method.description},
                     {"params", std::move(params)}});
    }
    print_json(boost::json::object{{"photon", name}, {"methods", std::move(all)}});
    return kExitOk;
  }
  if (methods.empty()) {
    std::cout << name << " has no methods\n";
    return kExitOk;
  }
  photon::cli::Table table({"METHOD", "PARAMETERS", "DESCRIPTION"});
  for (const auto& method : methods) {
    std::string params;
    for (const auto& param : method.params) {
      if (!params.empty()) params += ' ';
      params += param.required ? param.name : "[" + param.name + "]";
    }
    table.add_row({method.name, params, method.description});
  }
  table.print(std::cout);
  return kExitOk;
}

}  // namespace

void add_call_command(CommandLine& cli) {
  struct Options {
    std::string method;
    std::vector<std::string> pairs;
    std::optional<std::string> args_json;
    std::optional<std::string> session;
    std::vector<std::string> answers;
    std::optional<std::string> timeout;
  };
  auto options = std::make_shared<Options>();
  auto* call = cli.add("call", "Call METHOD of photon NAME and print its result", [&cli, options] {
    return cmd_call(cli.globals(), cli.name(), options->method, options->pairs, options->args_json,
                    options->session, options->answers, options->timeout);
  });
  call->add_option("name", cli.name(), "Photon name")->required();
  call->add_option("method", options->method, "Method name")->required();
  call->add_option("params", options->pairs, "Arguments as key=value (value typed as below)");
  call->add_option("--args", options->args_json,
                   "Arguments as a JSON object; key=value pairs win over it");
  call->add_option("--session", options->session,
                   "Session whose photon instance runs the call (default: $PHOTON_SESSION_ID, "
                   "else the daemon's shared \"default\" session)");
  call->add_option("--answer", options->answers,
                   "Answer to the next prompt (repeat for each prompt, in order)")
      ->allow_extra_args(false);
  call->add_option("--timeout", options->timeout,
                   "Give up after this long without a result (e.g. 30s); default: wait as long as "
                   "the method runs");
  call->footer(
      "A key=value value that is valid JSON is used as JSON, anything else as a string:\n"
      "taskId=1 is the number 1, done=true a boolean, tags='[\"a\"]' an array, column=Done and\n"
      "column='\"1\"' strings.\n"
      "The result goes to stdout: a string as it is, other JSON indented (compact with --json;\n"
      "nothing for a method that returns nothing, except null with --json). Progress goes to\n"
      "stderr, one line per event (\"… <message>\" or \"… <json>\").\n"
      "Prompts take the --answer values first, in order (for confirm y/yes/true and n/no/false;\n"
      "for select an option's value, label or number; else JSON or a string as above), then ask\n"
      "on the terminal when stdin is one (a password without echo), else are declined (the\n"
      "method receives null) with a note on stderr.\n"
      "Calls without --session or $PHOTON_SESSION_ID share the daemon's \"default\" session, so\n"
      "consecutive calls see the same photon state. When --timeout passes, photonctl exits 1 but\n"
      "the method may still be running.\n"
      "Exit status: 0 ok, 1 the method failed or is unknown (the message on stderr), 2 usage,\n"
      "3 daemon not running.");
}

void add_methods_command(CommandLine& cli) {
  auto* methods = cli.add("methods", "List the methods of photon NAME",
                          [&cli] { return cmd_methods(cli.globals(), cli.name()); });
  methods->add_option("name", cli.name(), "Photon name")->required();
}

}  // namespace photon::cli
