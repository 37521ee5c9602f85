// A C++ photon built outside photond's tree, against the installed libphoton (photon::photon):
// `greeter` answers `hello` and announces each greeting on channel `greetings`.
#include <photon/photon.hpp>

#include <boost/json.hpp>

#include <string>
#include <string_view>

struct Greeter {
  static constexpr std::string_view photon_name = "greeter";

  static photon::MethodTable<Greeter> methods() {
    return {{"hello",
             &Greeter::hello,
             "Greet someone and announce it on channel greetings",
             {{"who", "string", "Whom to greet (default: world)", false}}}};
  }

  boost::json::value hello(photon::Context& context, const boost::json::object& args) {
    std::string who = "world";
    if (const boost::json::value* value = args.if_contains("who")) {
      if (!value->is_string()) throw photon::MethodError("who must be a string");
      who = value->as_string().c_str();
    }
    context.emit({{"channel", "greetings"}, {"event", "greeted"}, {"who", who}});
    return boost::json::value("hello, " + who);
  }
};

int main(int argc, char** argv) { return photon::serve<Greeter>(argc, argv); }
