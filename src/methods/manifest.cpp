// Manifest loading: toml++ parses, this file checks every key and value and says where a problem
// is, so a typo in a manifest stops the daemon at start-up instead of surfacing at the first call.
#include "methods/manifest.hpp"

#include "common/units.hpp"
#include "webhooks/webhook_auth.hpp"

#include <toml++/toml.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <sstream>
#include <tuple>

namespace photon::core {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxManifestBytes = 1u << 20;
constexpr std::size_t kMaxMethodName = 64;

constexpr std::string_view kTopKeys[] = {"description", "methods", "jobs"};
constexpr std::string_view kJobKeys[] = {"method",   "cron",     "args",
                                         "timezone", "catch_up", "overlap"};
constexpr std::string_view kMethodKeys[] = {
    "description",    "command",     "timeout", "working_dir", "env",
    "max_concurrent", "interactive", "params",  "webhook",     "webhook_auth"};
constexpr std::string_view kParamKeys[] = {"name", "type", "description", "required"};
constexpr std::string_view kParamTypes[] = {"string", "number", "boolean",
                                            "object", "array",  "any"};
// Set by the daemon for every call; a manifest setting them would be overridden, so it may not.
constexpr std::string_view kReservedEnv[] = {"PHOTON_NAME", "PHOTON_METHOD", "PHOTON_SESSION_ID",
                                             "PHOTON_CLIENT_TYPE", "PHOTON_SOCKET"};

bool contains(std::span<const std::string_view> list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string join(std::span<const std::string_view> list) {
  std::string out;
  for (std::string_view item : list) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

bool valid_method_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxMethodName) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(name.front())) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return alpha(c) || digit(c) || c == '.' || c == '-'; });
}

// `text` as a TOML basic string, quotes and escapes included (JSON's escapes are TOML's too).
std::string toml_quoted(std::string_view text) {
  return boost::json::serialize(boost::json::string(text));
}

// A TOML key as written in a file: quoted unless it is a bare key (a method named "a.b" is
// methods."a.b").
std::string key_text(std::string_view key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return bare ? std::string(key) : toml_quoted(key);
}

// Walks the parsed document; every failure names the file, the line and column, and the key.
class Parser {
 public:
  Parser(const fs::path& file, std::string label) : file_(file), label_(std::move(label)) {}

  Manifest parse(const toml::table& root) {
    Manifest manifest;
    manifest.file = file_;
    check_keys(root, "", kTopKeys);
    if (const toml::node* node = root.get("description")) {
      manifest.description = string_of(*node, "description");
    }
    const toml::node* methods_node = root.get("methods");
    if (methods_node == nullptr) {
      fail(toml::source_position{1, 1}, "no methods: add a [methods.NAME] table with a command");
    }
    const toml::table* methods = methods_node->as_table();
    if (methods == nullptr) {
      fail(*methods_node, "methods must be a table of methods ([methods.NAME]), not " +
                              std::string(type_name(methods_node->type())));
    }
    if (methods->empty()) {
      fail(*methods, "no methods: add a [methods.NAME] table with a command");
    }

    // toml::table keeps keys sorted; methods keep the order the file declares them in.
    std::vector<
        std::tuple<toml::source_index, toml::source_index, const toml::key*, const toml::node*>>
        ordered;
    for (const auto& [key, node] : *methods) {
      ordered.emplace_back(key.source().begin.line, key.source().begin.column, &key, &node);
    }
    std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
    });
    for (const auto& [line, column, key, node] : ordered) {
      manifest.methods.push_back(parse_method(*key, *node));
    }
    if (const toml::node* jobs_node = root.get("jobs")) {
      const toml::table* jobs = jobs_node->as_table();
      if (jobs == nullptr) {
        fail(*jobs_node, "jobs must be a table of jobs ([jobs.ID]), not " +
                             std::string(type_name(jobs_node->type())));
      }
      for (const auto& [key, node] : *jobs) manifest.jobs.push_back(parse_job(key, node, manifest));
    }
    return manifest;
  }

 private:
  [[noreturn]] void fail(toml::source_position where, const std::string& what) const {
    const auto line = where.line == 0 ? 1 : where.line;
    const auto column = where.column == 0 ? 1 : where.column;
    throw ManifestError(label_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                        what);
  }
  [[noreturn]] void fail(const toml::node& node, const std::string& what) const {
    fail(node.source().begin, what);
  }

  void check_keys(const toml::table& table, const std::string& prefix,
                  std::span<const std::string_view> allowed) const {
    for (const auto& [key, node] : table) {
      if (!contains(allowed, key.str())) {
        fail(key.source().begin, "unknown key " + prefix + key_text(key.str()) +
                                     " (known keys: " + join(allowed) + ")");
      }
    }
  }

  std::string string_of(const toml::node& node, const std::string& what) const {
    const auto* value = node.as_string();
    if (value == nullptr) {
      fail(node, what + " must be a string, not " + std::string(type_name(node.type())));
    }
    return value->get();
  }

  bool bool_of(const toml::node& node, const std::string& what) const {
    const auto* value = node.as_boolean();
    if (value == nullptr) {
      fail(node, what + " must be true or false, not " + std::string(type_name(node.type())));
    }
    return value->get();
  }

  std::string no_nul(const toml::node& node, std::string text, const std::string& what) const {
    if (text.find('\0') != std::string::npos) fail(node, what + " contains a NUL character");
    return text;
  }

  ExecMethod parse_method(const toml::key& key, const toml::node& node) {
    const std::string name(key.str());
    const std::string path = "methods." + key_text(name);
    if (!valid_method_name(name)) {
      fail(key.source().begin,
           "bad method name " + toml_quoted(name) +
               ": a method name is a letter or '_' followed by up to 63 letters, digits, '_', "
               "'.' or '-'");
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      fail(node,
           path + " must be a table ([" + path + "]), not " + std::string(type_name(node.type())));
    }
    check_keys(*table, path + ".", kMethodKeys);

    ExecMethod method;
    method.info.name = name;
    method.working_dir = file_.parent_path();

    if (const toml::node* value = table->get("description")) {
      method.info.description = string_of(*value, path + ".description");
      if (method.info.description.find_first_of("\r\n") != std::string::npos) {
        fail(*value, path + ".description must be one line");
      }
    }

    const toml::node* command = table->get("command");
    if (command == nullptr) {
      fail(*table, path + " has no command (command = \"./script.sh\" or [\"prog\", \"arg\"])");
    }
    method.argv = parse_command(*command, path + ".command");

    if (const toml::node* value = table->get("timeout")) {
      method.timeout = parse_timeout(*value, path + ".timeout");
    }
    if (const toml::node* value = table->get("working_dir")) {
      method.working_dir = parse_working_dir(*value, path + ".working_dir");
    }
    if (const toml::node* value = table->get("env")) {
      method.env = parse_env(*value, path + ".env");
    }
    if (const toml::node* value = table->get("max_concurrent")) {
      const auto* number = value->as_integer();
      if (number == nullptr || number->get() < 0) {
        fail(*value, path + ".max_concurrent must be a whole number >= 0 (0: no limit)");
      }
      method.max_concurrent = static_cast<std::size_t>(number->get());
    }
    if (const toml::node* value = table->get("interactive")) {
      method.interactive = bool_of(*value, path + ".interactive");
    }
    if (const toml::node* value = table->get("params")) {
      method.info.params = parse_params(*value, path + ".params");
    }
    if (const toml::node* value = table->get("webhook")) {
      method.info.webhook = bool_of(*value, path + ".webhook");
    }
    if (const toml::node* value = table->get("webhook_auth")) {
      method.info.webhook_auth = string_of(*value, path + ".webhook_auth");
      if (!webhook_scheme_from_name(method.info.webhook_auth)) {
        fail(*value, path + ".webhook_auth must be one of none, secret, github, stripe, standard");
      }
    }
    return method;
  }

  // A TOML value as JSON (dates and times become their TOML text).
  static boost::json::value to_json(const toml::node& node) {
    if (const auto* text = node.as_string()) return boost::json::string(text->get());
    if (const auto* number = node.as_integer()) return number->get();
    if (const auto* number = node.as_floating_point()) return number->get();
    if (const auto* flag = node.as_boolean()) return flag->get();
    if (const auto* array = node.as_array()) {
      boost::json::array json;
      for (const toml::node& element : *array) json.push_back(to_json(element));
      return json;
    }
    if (const auto* table = node.as_table()) {
      boost::json::object json;
      for (const auto& [key, value] : *table) json[key.str()] = to_json(value);
      return json;
    }
    std::ostringstream text;
    node.visit([&](const auto& value) { text << value; });
    return boost::json::string(text.str());
  }

  JobSpec parse_job(const toml::key& key, const toml::node& node, const Manifest& manifest) const {
    JobSpec job;
    job.id = std::string(key.str());
    const std::string path = "jobs." + key_text(job.id);
    if (job.id.empty() || job.id.size() > 256 ||
        std::any_of(job.id.begin(), job.id.end(),
                    [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
      fail(key.source().begin,
           "bad job id " + toml_quoted(job.id) + ": 1 to 256 bytes without control characters");
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      fail(node,
           path + " must be a table ([" + path + "]), not " + std::string(type_name(node.type())));
    }
    check_keys(*table, path + ".", kJobKeys);
    const toml::node* method = table->get("method");
    if (method == nullptr) fail(*table, path + " has no method (method = \"NAME\")");
    job.method = string_of(*method, path + ".method");
    if (std::none_of(manifest.methods.begin(), manifest.methods.end(),
                     [&](const ExecMethod& m) { return m.info.name == job.method; })) {
      fail(*method, path + ".method: no method \"" + job.method + "\" in this manifest");
    }
    const toml::node* cron = table->get("cron");
    if (cron == nullptr) fail(*table, path + " has no cron (cron = \"0 3 * * *\")");
    job.cron = string_of(*cron, path + ".cron");
    try {
      CronExpression::parse(job.cron);
    } catch (const CronError& error) {
      fail(*cron, path + ".cron: " + error.what());
    }
    if (const toml::node* value = table->get("args")) {
      if (value->as_table() == nullptr) {
        fail(*value, path + ".args must be a table (args = { key = \"value\" }), not " +
                         std::string(type_name(value->type())));
      }
      job.args = to_json(*value).as_object();
    }
    if (const toml::node* value = table->get("timezone")) {
      job.timezone = string_of(*value, path + ".timezone");
      try {
        cron_zone(job.timezone);
      } catch (const CronError& error) {
        fail(*value, path + ".timezone: " + error.what());
      }
    }
    if (const toml::node* value = table->get("catch_up")) {
      const std::string text = string_of(*value, path + ".catch_up");
      if (text != "latest" && text != "skip")
        fail(*value, path + ".catch_up must be \"latest\" or \"skip\"");
      job.catch_up = text == "skip" ? CatchUp::kSkip : CatchUp::kLatest;
    }
    if (const toml::node* value = table->get("overlap")) {
      const std::string text = string_of(*value, path + ".overlap");
      if (text != "skip" && text != "allow")
        fail(*value, path + ".overlap must be \"skip\" or \"allow\"");
      job.overlap = text == "allow" ? Overlap::kAllow : Overlap::kSkip;
    }
    job.created_by = "photon";
    job.declared = true;
    return job;
  }

  std::vector<std::string> parse_command(const toml::node& node, const std::string& what) const {
    if (const auto* text = node.as_string()) {
      if (text->get().find_first_not_of(" \t\r\n") == std::string::npos) {
        fail(node, what + " is empty");
      }
      return {"/bin/sh", "-c", no_nul(node, text->get(), what)};
    }
    const auto* array = node.as_array();
    if (array == nullptr) {
      fail(node, what +
                     " must be a string (run by /bin/sh -c) or an array of strings (an argv), "
                     "not " +
                     std::string(type_name(node.type())));
    }
    if (array->empty()) fail(node, what + " is an empty array");
    std::vector<std::string> argv;
    for (const toml::node& element : *array) {
      const auto* text = element.as_string();
      if (text == nullptr) {
        fail(element,
             what + " must hold strings only, not " + std::string(type_name(element.type())));
      }
      argv.push_back(no_nul(element, text->get(), what));
    }
    if (argv.front().empty()) fail(node, what + " names no program (its first element is empty)");
    return argv;
  }

  std::chrono::milliseconds parse_timeout(const toml::node& node, const std::string& what) const {
    const std::string expected =
        what + " must be a duration (\"500ms\", \"30s\", \"5m\") or a whole number of seconds";
    std::optional<std::chrono::milliseconds> timeout;
    if (const auto* seconds = node.as_integer()) {
      if (seconds->get() <= 0) fail(node, what + " must be positive");
      if (seconds->get() > std::numeric_limits<std::int64_t>::max() / 1000) {
        fail(node, what + " is too large");
      }
      timeout = std::chrono::seconds(seconds->get());
    } else if (const auto* text = node.as_string()) {
      timeout = parse_duration(text->get());
      if (!timeout) fail(node, expected + ", not \"" + text->get() + "\"");
      if (timeout->count() <= 0) fail(node, what + " must be positive");
    } else {
      fail(node, expected + ", not " + std::string(type_name(node.type())));
    }
    return *timeout;
  }

  fs::path parse_working_dir(const toml::node& node, const std::string& what) const {
    std::string text = no_nul(node, string_of(node, what), what);
    if (text.empty()) fail(node, what + " is empty");
    fs::path dir = fs::path(text);
    if (dir.is_relative()) dir = file_.parent_path() / dir;
    dir = dir.lexically_normal();
    if (!dir.has_filename() && dir != dir.root_path()) dir = dir.parent_path();  // "a/b/" -> "a/b"
    std::error_code error;
    if (!fs::is_directory(dir, error)) {
      fail(node, what + ": " + dir.string() + " is not a directory");
    }
    return dir;
  }

  std::vector<std::pair<std::string, std::string>> parse_env(const toml::node& node,
                                                             const std::string& what) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      fail(node, what + " must be a table (env = { NAME = \"value\" }), not " +
                     std::string(type_name(node.type())));
    }
    std::vector<std::pair<std::string, std::string>> env;
    for (const auto& [key, value] : *table) {
      const std::string name(key.str());
      if (name.empty() || name.find_first_of("=") != std::string::npos ||
          name.find('\0') != std::string::npos) {
        fail(key.source().begin, what + ": bad variable name " + toml_quoted(name));
      }
      if (contains(kReservedEnv, name)) {
        fail(key.source().begin, what + "." + name + " is set by the daemon for every call");
      }
      const std::string path = what + "." + key_text(name);
      const auto* text = value.as_string();
      if (text == nullptr) {
        fail(value,
             path + " must be a string (quote it), not " + std::string(type_name(value.type())));
      }
      env.emplace_back(name, no_nul(value, text->get(), path));
    }
    return env;
  }

  std::vector<ParamInfo> parse_params(const toml::node& node, const std::string& what) const {
    const toml::array* array = node.as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      fail(node, what + " must be an array of tables ([[" + what + "]]), not " +
                     std::string(type_name(node.type())));
    }
    std::vector<ParamInfo> params;
    for (const toml::node& element : *array) {
      const toml::table& table = *element.as_table();
      check_keys(table, what + ".", kParamKeys);
      ParamInfo param;
      param.type = "any";
      const toml::node* name = table.get("name");
      if (name == nullptr) fail(table, what + " entry has no name");
      param.name = string_of(*name, what + ".name");
      if (param.name.empty()) fail(*name, what + ".name is empty");
      for (const ParamInfo& other : params) {
        if (other.name == param.name) fail(*name, what + ": parameter " + param.name + " twice");
      }
      if (const toml::node* type = table.get("type")) {
        param.type = string_of(*type, what + ".type");
        if (!contains(kParamTypes, param.type)) {
          fail(*type,
               what + ".type must be one of " + join(kParamTypes) + ", not \"" + param.type + "\"");
        }
      }
      if (const toml::node* description = table.get("description")) {
        param.description = string_of(*description, what + ".description");
      }
      if (const toml::node* required = table.get("required")) {
        param.required = bool_of(*required, what + ".required");
      }
      params.push_back(std::move(param));
    }
    return params;
  }

  fs::path file_;
  std::string label_;
};

}  // namespace

Manifest parse_manifest(std::string_view text, const fs::path& file) {
  const std::string label = file.string();
  toml::table root;
  try {
    root = toml::parse(text, label);
  } catch (const toml::parse_error& error) {
    const auto& begin = error.source().begin;
    throw ManifestError(label + ":" + std::to_string(begin.line == 0 ? 1 : begin.line) + ":" +
                        std::to_string(begin.column == 0 ? 1 : begin.column) + ": " +
                        std::string(error.description()));
  }
  return Parser(fs::absolute(file).lexically_normal(), label).parse(root);
}

Manifest load_manifest(const fs::path& file) {
  std::error_code ignored;
  if (fs::is_directory(file, ignored)) throw ManifestError(file.string() + ": is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ManifestError(file.string() + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buffer[16384];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxManifestBytes) {
      throw ManifestError(file.string() + ": larger than " + std::to_string(kMaxManifestBytes) +
                          " bytes; not a manifest");
    }
  }
  if (in.bad()) throw ManifestError(file.string() + ": cannot read: " + std::strerror(errno));
  return parse_manifest(text, file);
}

}  // namespace photon::core
