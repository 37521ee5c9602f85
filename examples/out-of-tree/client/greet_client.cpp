// A client built outside photond's tree, against the installed libphoton-client (photon::client):
// takes a lock, calls greeter's `hello` method and prints the announcement it hears on channel
// `greetings`. Usage: greet_client [PHOTON [WHO]] (default: greeter world).
#include <photon/client.hpp>
#include <photon/lock_guard.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  const std::string photon_name = argc > 1 ? argv[1] : "greeter";
  const std::string who = argc > 2 ? argv[2] : "world";
  try {
    // A channel message published by the method reaches every subscriber except the caller's
    // connection: listen on a second one.
    auto listener = photon::Client::connect(photon_name);
    listener.subscribe("greetings");

    photon::LockGuard lock = photon::LockGuard::acquire(photon_name, "greeting");
    if (!lock) {
      std::cerr << "greet_client: " << lock.result().reason << "\n";
      return 1;
    }
    std::cout << "lock greeting held with token " << lock.token() << "\n";

    auto caller = photon::Client::connect(photon_name);
    const boost::json::value result = caller.call("hello", {{"who", who}});
    std::cout << "result: " << boost::json::serialize(result) << "\n";

    const auto message = listener.next(std::chrono::seconds(10));
    if (!message) {
      std::cerr << "greet_client: no announcement on channel greetings\n";
      return 1;
    }
    std::cout << message->channel << ": " << boost::json::serialize(message->message) << "\n";
    lock.release();
    return 0;
  } catch (const photon::ClientError& error) {
    std::cerr << "greet_client: " << error.what() << "\n";
    return error.kind() == photon::ClientError::Kind::kNotRunning ? 3 : 1;
  }
}
