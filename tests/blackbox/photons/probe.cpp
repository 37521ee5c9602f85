// A C++ photon for the black-box tests of what only the embedding API declares: a cron job the
// photon brings itself, and methods marked webhook-callable with their own scheme.
#include <photon/photon.hpp>

#include <atomic>

namespace {

std::atomic<int> ticks{0};

struct Probe {
  static constexpr std::string_view photon_name = "probe";

  static photon::MethodTable<Probe> methods() {
    return {
        {"tick", &Probe::tick, "Counts the scheduler's calls"},
        {"ticks", &Probe::count, "How many ticks so far"},
        {"hook", &Probe::hook, "Called by webhooks (GitHub-signed)", {}, true, "github"},
        {"open", &Probe::hook, "Called by webhooks (the default scheme)", {}, true},
    };
  }

  static std::vector<photon::Job> jobs() {
    return {{.id = "every-second",
             .method = "tick",
             .cron = "* * * * * *",
             .args = {{"from", "probe"}}}};
  }

  boost::json::value tick(photon::Context& context, const boost::json::object& args) {
    if (context.session_id() != "scheduler") throw photon::MethodError("not the scheduler");
    if (!args.contains("from")) throw photon::MethodError("the job's args did not arrive");
    return ++ticks;
  }
  boost::json::value count(photon::Context&, const boost::json::object&) { return ticks.load(); }
  boost::json::value hook(photon::Context& context, const boost::json::object& args) {
    return boost::json::object{{"session", context.session_id()}, {"args", args}};
  }
};

}  // namespace

int main(int argc, char** argv) { return photon::serve<Probe>(argc, argv); }
