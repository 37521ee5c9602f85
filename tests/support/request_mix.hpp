// A seeded stream of valid request lines of every size from 0 B to 1 MiB of payload, mixing
// request types, for tests that push many requests through one parser or one connection.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace photon::testing {

struct MixedRequest {
  std::string line;
  std::string id;
  std::string type;
  std::size_t payload_bytes = 0;  // bytes of message payload (0 for requests without one)
};

// Sizes are drawn log-uniformly (2^U(0, 20) bytes, plus exact 0), so small, medium and large
// requests all come often; payloads are strings, arrays of numbers or nested objects, which take
// the parser's different paths (one large string, many small values, depth).
class RequestMix {
 public:
  static constexpr std::size_t kMaxPayloadBytes = 1u << 20;

  explicit RequestMix(std::uint64_t seed) : random_(seed) {
    text_.reserve(kMaxPayloadBytes);
    for (std::size_t i = 0; text_.size() < kMaxPayloadBytes; ++i) {
      text_ += static_cast<char>('a' + i % 26);
    }
    numbers_.reserve(kMaxPayloadBytes);
    while (numbers_.size() + 4 < kMaxPayloadBytes) numbers_ += "123,";
  }

  std::size_t random_size() {
    if (std::uniform_int_distribution<int>(0, 49)(random_) == 0) return 0;
    const double exponent = std::uniform_real_distribution<double>(0.0, 20.0)(random_);
    return std::min<std::size_t>(kMaxPayloadBytes, static_cast<std::size_t>(std::exp2(exponent)));
  }

  MixedRequest next() {
    MixedRequest request;
    request.id = "r" + std::to_string(++count_);
    const int kind = std::uniform_int_distribution<int>(0, 9)(random_);
    const std::string head = R"({"id":")" + request.id + R"(","type":")";
    switch (kind) {
      case 0:
        request.type = "ping";
        request.line = head + R"(ping"})";
        break;
      case 1:
        request.type = "status";
        request.line = head + R"(status"})";
        break;
      case 2:
        request.type = "lock";
        request.line = head + R"(lock","lockName":"mix:)" + std::to_string(count_ % 4) +
                       R"(","sessionId":"mix","timeout":60000})";
        break;
      case 3:
        request.type = "unlock";
        request.line = head + R"(unlock","lockName":"mix:)" + std::to_string(count_ % 4) +
                       R"(","sessionId":"mix"})";
        break;
      default: {
        request.type = "publish";
        request.payload_bytes = random_size();
        request.line = head + R"(publish","channel":"mix:)" + std::to_string(kind) +
                       R"(","message":)" + payload(kind, request.payload_bytes) + "}";
      }
    }
    return request;
  }

 private:
  // A JSON value of about `bytes` bytes.
  std::string payload(int kind, std::size_t bytes) {
    switch (kind % 3) {
      case 0:
        return "\"" + text_.substr(0, bytes) + "\"";
      case 1: {
        const std::size_t whole = bytes / 4 * 4;
        return "[" + numbers_.substr(0, whole) + "0]";
      }
      default:
        return R"({"a":{"b":[")" + text_.substr(0, bytes) + R"(",{"c":null}]},"d":true})";
    }
  }

  std::mt19937_64 random_;
  std::string text_;
  std::string numbers_;
  std::uint64_t count_ = 0;
};

}  // namespace photon::testing
