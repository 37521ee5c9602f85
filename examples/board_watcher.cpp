// Example libphoton client: subscribes to a channel pattern and prints each message, or, given a
// message, publishes it. Usage: board_watcher NAME [CHANNEL-PATTERN] | board_watcher NAME --publish
// CHANNEL JSON
#include <photon/client.hpp>

#include <boost/json.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr
        << "usage: board_watcher NAME [PATTERN] | board_watcher NAME --publish CHANNEL JSON\n";
    return 2;
  }
  try {
    auto client = photon::Client::connect(argv[1]);
    if (argc == 5 && std::string(argv[2]) == "--publish") {
      const std::size_t delivered = client.publish(argv[3], boost::json::parse(argv[4]));
      std::cout << "delivered to " << delivered << "\n";
      return 0;
    }
    client.subscribe(argc > 2 ? argv[2] : "board:*", [](const photon::ChannelMessage& message) {
      std::cout << message.channel << ": " << boost::json::serialize(message.message) << std::endl;
    });
    for (;;) client.poll(std::chrono::seconds(60));
  } catch (const photon::ClientError& error) {
    std::cerr << "board_watcher: " << error.what() << "\n";
    return error.kind() == photon::ClientError::Kind::kNotRunning ? 3 : 1;
  }
}
