// libphoton's embedding API: a photon written in C++. A class declares its methods in one table;
// photon::serve<T>(argc, argv) makes the program the daemon of that photon (every photond flag
// applies). docs/methods.md has the whole story; examples/kanban is a complete photon.
//
//   struct Greeter {
//     static constexpr std::string_view photon_name = "greeter";
//     static photon::MethodTable<Greeter> methods() {
//       return {{"hello", &Greeter::hello, "Say hello", {{"who", "string", "Whom to greet",
//       false}}}};
//     }
//     boost::json::value hello(photon::Context& context, const boost::json::object& args);
//   };
//   int main(int argc, char** argv) { return photon::serve<Greeter>(argc, argv); }
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace photon {

// A question a method asks its caller: the spec's prompt shape.
struct Prompt {
  std::string type = "text";  // "text", "password", "confirm" or "select"
  std::string message;
  boost::json::value default_value;  // null: no default
  // select only: strings, or {"value": ..., "label": ...} objects
  boost::json::array options;

  static Prompt text(std::string message, std::string default_value = {});
  static Prompt password(std::string message);
  static Prompt confirm(std::string message, bool default_value = false);
  static Prompt select(std::string message, boost::json::array options,
                       std::string default_value = {});

  // The prompt's JSON ({"type", "message", "default"?, "options"?}).
  boost::json::object to_json() const;
};

// What a running method may know and do. Valid for the duration of the call only.
// Thread rule: use it from the method's own thread.
class Context {
 public:
  virtual ~Context() = default;

  // The caller's session ("default" when it named none; "scheduler" for jobs).
  virtual const std::string& session_id() const = 0;
  // As the caller said ("cli", "mcp", "beam"...), or empty.
  virtual const std::string& client_type() const = 0;
  virtual const std::string& method() const = 0;

  // Sends `event` without waiting. With a string "channel" member, the whole event is published
  // on that channel to every subscriber except the caller's connection; without, it goes to the
  // caller alone as progress ({"type":"emit","id":...,"emitData":event}).
  virtual void emit(boost::json::object event) = 0;

  // Asks the caller and waits for the answer. Nothing when the caller declines, has left, does
  // not answer within the daemon's prompt timeout, or the call is cancelled.
  virtual std::optional<boost::json::value> prompt(const Prompt& prompt) = 0;

  // A confirm prompt: the caller's yes or no; nothing when unanswered.
  std::optional<bool> confirm(std::string message, bool default_value = false);

  // True once the daemon is shutting down: a long method should stop soon (its result is
  // still delivered if the caller is there).
  virtual bool cancelled() const = 0;
};

// Thrown by a method to fail with this message (any std::exception fails the call the same way).
class MethodError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A parameter a method documents, for list_methods and `photonctl methods` (not enforced).
struct Param {
  std::string name;
  std::string type = "string";  // "string", "number", "boolean", "object", "array" or "any"
  std::string description;
  bool required = true;
};

// One row of a photon's method table.
template <class T>
struct Method {
  std::string name;
  boost::json::value (T::*function)(Context&, const boost::json::object&);
  std::string description;  // one line
  std::vector<Param> params;
  // Webhooks: once any method is marked, only marked methods answer over HTTP.
  bool webhook = false;
  // "github", "stripe", "standard", "secret" or "none"; empty: the daemon's default scheme.
  std::string webhook_auth;
};

template <class T>
using MethodTable = std::vector<Method<T>>;

// A cron job the photon declares: present from the daemon's start, restored at every start, and
// not removable by `unschedule` (docs/scheduler.md).
struct Job {
  std::string id;
  std::string method;
  std::string cron;  // 5 fields, 6 with seconds first, or a macro such as @daily
  boost::json::object args;
  std::string timezone;        // IANA name; empty: the daemon's local zone
  bool catch_up = true;        // run once for the latest slot missed while the daemon was down
  bool allow_overlap = false;  // run even while the previous run still runs
};

// A photon with its type erased: what serve() runs. Built by define_photon<T>(), or by hand.
struct PhotonDefinition {
  struct Entry {
    std::string name;
    std::string description;
    std::vector<Param> params;
    bool webhook = false;
    std::string webhook_auth;
    // Runs the method on `instance` (an object made by `create`).
    std::function<boost::json::value(void* instance, Context&, const boost::json::object&)> call;
  };
  std::string name;
  std::vector<Entry> methods;
  // Makes the instance of one session. Called on a worker thread, at the session's first call.
  std::function<std::shared_ptr<void>()> create;
  // False: calls of one session run one at a time, in arrival order. True: they may overlap
  // (the class synchronises itself).
  bool concurrent = false;
  std::vector<Job> jobs;
};

// The definition of photon class T, which must have `static constexpr std::string_view
// photon_name`, `static MethodTable<T> methods()` and a default constructor, and may have
// `static constexpr bool concurrent = true` and `static std::vector<photon::Job> jobs()`.
template <class T>
PhotonDefinition define_photon() {
  PhotonDefinition definition;
  definition.name = std::string(T::photon_name);
  for (Method<T>& method : T::methods()) {
    auto function = method.function;
    definition.methods.push_back(
        {std::move(method.name), std::move(method.description), std::move(method.params),
         method.webhook, std::move(method.webhook_auth),
         [function](void* instance, Context& context, const boost::json::object& args) {
           return (static_cast<T*>(instance)->*function)(context, args);
         }});
  }
  definition.create = [] { return std::static_pointer_cast<void>(std::make_shared<T>()); };
  if constexpr (requires { T::concurrent; }) definition.concurrent = T::concurrent;
  if constexpr (requires { T::jobs(); }) definition.jobs = T::jobs();
  return definition;
}

// Runs the daemon of `definition` with photond's `serve` command line (the NAME argument is
// optional and defaults to the photon's name). Returns the process exit code: 0 after a clean
// shutdown, 1 when the daemon could not start, 2 for bad usage.
int serve(PhotonDefinition definition, int argc, char** argv);

template <class T>
int serve(int argc, char** argv) {
  return serve(define_photon<T>(), argc, argv);
}

}  // namespace photon
