// check_call_args: a call's arguments against its method's declared parameters.
#include "methods/method_args.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace photon::core {
namespace {

MethodInfo move_task() {
  return {"moveTask",
          "Move a task",
          {{"taskId", "number", "", true},
           {"column", "string", "", true},
           {"board", "string", "", false},
           {"meta", "any", "", false},
           {"tags", "array", "", false},
           {"opts", "object", "", false},
           {"done", "boolean", "", false}}};
}

std::optional<std::string> check(const MethodInfo& method, const char* args) {
  return check_call_args(method, boost::json::parse(args).as_object());
}

constexpr const char* kListed =
    "; parameters: taskId (number), column (string), [board] (string), [meta] (any), "
    "[tags] (array), [opts] (object), [done] (boolean)";

TEST(MethodArgs, ArgumentsThatFitPass) {
  EXPECT_EQ(check(move_task(), R"({"taskId":1,"column":"Done"})"), std::nullopt);
  EXPECT_EQ(check(move_task(), R"({"taskId":1.5,"column":"Done","board":"b","meta":[1],"tags":[],
                                  "opts":{},"done":false})"),
            std::nullopt);
  EXPECT_EQ(check(move_task(), R"({"taskId":-1,"column":"x","board":null,"meta":null})"),
            std::nullopt)
      << "null counts as absent";
}

TEST(MethodArgs, UnknownNamesAreRefusedWithTheList) {
  EXPECT_EQ(check(move_task(), R"({"taskId":1,"column":"Done","colum":"x"})"),
            std::string("method \"moveTask\": unknown parameter \"colum\"") + kListed);
}

TEST(MethodArgs, WrongTypesAreRefused) {
  EXPECT_EQ(
      check(move_task(), R"({"taskId":"1","column":"Done"})"),
      std::string("method \"moveTask\": parameter \"taskId\" must be a number, not a string") +
          kListed);
  EXPECT_EQ(check(move_task(), R"({"taskId":1,"column":"Done","tags":{}})"),
            std::string("method \"moveTask\": parameter \"tags\" must be an array, not an object") +
                kListed);
  EXPECT_EQ(check(move_task(), R"({"taskId":1,"column":"Done","done":"yes"})"),
            std::string("method \"moveTask\": parameter \"done\" must be a boolean, not a string") +
                kListed);
}

TEST(MethodArgs, MissingRequiredParametersAreRefused) {
  EXPECT_EQ(check(move_task(), R"({"taskId":1})"),
            std::string("method \"moveTask\": missing required parameter \"column\"") + kListed);
  EXPECT_EQ(check(move_task(), R"({"taskId":1,"column":null})"),
            std::string("method \"moveTask\": missing required parameter \"column\"") + kListed);
}

TEST(MethodArgs, AMethodWithoutDeclaredParametersTakesAnything) {
  const MethodInfo open{"listBoards", "Every board", {}};
  EXPECT_EQ(check(open, R"({"anything":[1,{"x":null}]})"), std::nullopt);
}

}  // namespace
}  // namespace photon::core
