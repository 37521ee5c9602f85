// Checking a call's arguments against its method's declared parameters (method_args.hpp).
#include "methods/method_args.hpp"

#include <boost/json/value.hpp>

namespace photon::core {
namespace {

// The JSON type name of `value`, as parameter types spell them.
std::string_view json_type(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "number";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::object:
      return "object";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::null:
      return "null";
  }
  return "null";
}

// "taskId (number), [board] (string)": optional parameters in brackets.
std::string parameter_list(const MethodInfo& method) {
  std::string list;
  for (const ParamInfo& param : method.params) {
    if (!list.empty()) list += ", ";
    list += param.required ? param.name : "[" + param.name + "]";
    list += " (" + (param.type.empty() ? std::string("any") : param.type) + ")";
  }
  return list;
}

}  // namespace

std::optional<std::string> check_call_args(const MethodInfo& method,
                                           const boost::json::object& args) {
  if (method.params.empty()) return std::nullopt;
  auto refuse = [&](const std::string& problem) {
    return "method \"" + method.name + "\": " + problem + "; parameters: " + parameter_list(method);
  };
  for (const auto& arg : args) {
    const ParamInfo* declared = nullptr;
    for (const ParamInfo& param : method.params) {
      if (param.name == arg.key()) declared = &param;
    }
    if (declared == nullptr) {
      return refuse("unknown parameter \"" + std::string(arg.key()) + "\"");
    }
    const std::string_view type = json_type(arg.value());
    if (type == "null" || declared->type.empty() || declared->type == "any") continue;
    if (type != declared->type) {
      return refuse("parameter \"" + declared->name + "\" must be " +
                    (declared->type == "array" || declared->type == "object" ? "an " : "a ") +
                    declared->type + ", not " +
                    (type == "array" || type == "object" ? "an " : "a ") + std::string(type));
    }
  }
  for (const ParamInfo& param : method.params) {
    if (!param.required) continue;
    const boost::json::value* value = args.if_contains(param.name);
    if (value == nullptr || value->is_null()) {
      return refuse("missing required parameter \"" + param.name + "\"");
    }
  }
  return std::nullopt;
}

}  // namespace photon::core
