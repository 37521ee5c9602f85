// Parsing and validation of one request line: JSON → a typed Request, or the error the client sees.
// No I/O here; the transport hands in complete lines and the dispatcher acts on the result.
#pragma once

#include <boost/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace photon::protocol {

// A field a request type needs or may carry; each has one validation rule (see field_error).
enum class Field : std::uint8_t {
  kChannel,         // non-empty string ≤ 256 bytes, no C0/C1 controls or U+2028/U+2029, no '*'
  kChannelPattern,  // as kChannel, but a trailing '*' makes it a wildcard
  kMessage,         // any JSON value, must be present
  kLockName,        // as kChannel, '*' allowed anywhere
  kLockTimeout,     // integer milliseconds, 1 ≤ n ≤ kMaxLockTimeoutMs
  kLockWait,        // integer milliseconds, 0 ≤ n ≤ kMaxLockWaitMs
  kReleaseOnDisconnect,  // boolean
  kRenewToken,   // integer 1 ≤ n ≤ kMaxRenewToken; a renewal never waits (no lockWait > 0)
  kMethod,       // non-empty string ≤ 256 bytes, no C0/C1 controls or U+2028/U+2029
  kArgs,         // a JSON object
  kClientType,   // string ≤ 64 bytes
  kPromptValue,  // any JSON value, must be present (null declines the prompt)
  kJobId,        // as kLockName ("jobId")
  kCron,      // non-empty string ≤ 256 bytes (the expression itself is checked by the scheduler)
  kTimezone,  // string ≤ 64 bytes ("timezone"; empty: the daemon's zone)
  kCatchUp,   // "latest" or "skip"
  kOverlap,   // "skip" or "allow"
  kLimit,     // integer 1 ≤ n ≤ 1000
  kLastEventId,  // string ≤ 256 bytes ("lastEventId"; what it names is the window's to judge)
};

inline constexpr std::size_t kMaxIdBytes = 256;
inline constexpr std::size_t kMaxChannelBytes = 256;
inline constexpr std::size_t kMaxLockNameBytes = 256;
inline constexpr std::size_t kMaxMethodBytes = 256;
inline constexpr std::size_t kMaxClientTypeBytes = 64;
inline constexpr std::size_t kMaxJobIdBytes = 256;
inline constexpr std::size_t kMaxCronBytes = 256;
inline constexpr std::size_t kMaxLastEventIdBytes = 256;  // lastEventId, Last-Event-ID
inline constexpr std::size_t kMaxTimezoneBytes = 64;
inline constexpr std::int64_t kMaxLockTimeoutMs = 7LL * 24 * 3600 * 1000;
inline constexpr std::int64_t kMaxLockWaitMs = 24LL * 3600 * 1000;
// The largest fencing token (2^53 - 1, locks/lock_table.hpp's kMaxFencingToken), so the largest
// token a renewal can name.
inline constexpr std::int64_t kMaxRenewToken = (std::int64_t{1} << 53) - 1;

// Why `channel` is not a valid channel name (a pattern when `allow_wildcard`), or nothing.
std::optional<std::string> channel_name_error(std::string_view channel, bool allow_wildcard);

// The integer a JSON number stands for (an integral double such as 3e4 counts), or nothing.
std::optional<std::int64_t> integer_value(const boost::json::value& value);

// A request that passed the generic checks: an object with a string `type`, a string `id`, and,
// when present, a string `sessionId` (these hold for every request type). Whether the type is one
// the daemon serves is for the table of request types (daemon/dispatcher.cpp) to say.
// It borrows the parsed JSON: valid until the RequestParser that produced it parses again.
struct Request {
  std::string_view type;
  std::string_view id;
  const boost::json::object* fields;

  // The value of a field; null when absent. Validated fields have the type their rule promises.
  const boost::json::value* find(std::string_view key) const { return fields->if_contains(key); }
  std::string_view string_field(std::string_view key) const;
  // A validated integer field's value, else `fallback` when absent.
  std::int64_t integer_field(std::string_view key, std::int64_t fallback) const;
  bool bool_field(std::string_view key, bool fallback) const;
};

// What the client is told when a line is not a servable request.
struct RequestError {
  std::string id;  // the request's id when it was a string, else "unknown"
  std::string message;
};

using ParseResult = std::variant<Request, RequestError>;

// What a client that sent a request of a type nobody serves is told.
std::string unknown_type_message(std::string_view type);

// Checks the fields a request type requires (present and well-formed) and those it may carry
// (well-formed when present). Returns the error message for the first bad one, or nothing.
std::optional<std::string> validate_fields(const Request& request, std::span<const Field> required,
                                           std::span<const Field> optional);

// Parses request lines, reusing its buffers from one line to the next (so parsing a small
// request allocates nothing in the steady state).
// Invariant: memory held between two parses is bounded by the fixed buffers below, whatever the
// sizes of the lines parsed before; a large line borrows from the heap and gives it all back at
// the next parse. (A monotonic_resource remembers the size of its last upstream block and doubles
// it on every new one, even across release(): reused, it grew until allocation failed. So the
// arena is made anew for each line, and the parser after any line that outgrew its buffers.)
// Thread rule: one parser per thread; a Request it returns is valid until the next parse().
class RequestParser {
 public:
  explicit RequestParser(std::size_t max_json_depth);

  // `line` holds one line without its terminator. Success: a Request with a string type, a
  // string id and a valid sessionId if any. Failure: the error to send back (malformed JSON, not
  // an object, too deep, bad type, id or sessionId).
  ParseResult parse(std::string_view line);

  // Blocks this parser holds from the heap: the current request's DOM when it outgrew the fixed
  // arena, the parser's stacks when they outgrew theirs. Tests use it to show that nothing is
  // carried from one request to the next.
  std::size_t heap_blocks() const { return upstream_.blocks_in_use(); }

 private:
  // Counts the blocks the arena and the parser borrow from the heap. (Blocks, not bytes: the
  // arena hands a block back with a size other than the one it asked for.)
  class CountingResource final : public boost::json::memory_resource {
   public:
    std::size_t blocks_in_use() const { return blocks_in_use_; }
    // Bytes borrowed since the last call (sizes as asked for).
    std::size_t take_bytes_borrowed() { return std::exchange(bytes_borrowed_, 0); }

   private:
    void* do_allocate(std::size_t size, std::size_t align) override;
    void do_deallocate(void* pointer, std::size_t size, std::size_t align) override;
    bool do_is_equal(const boost::json::memory_resource& other) const noexcept override {
      return this == &other;
    }
    std::size_t blocks_in_use_ = 0;
    std::size_t bytes_borrowed_ = 0;
  };

  static constexpr std::size_t kArenaBytes = 16 * 1024;
  static constexpr std::size_t kParserStackBytes = 16 * 1024;
  // The parser's value stack holds at most one value per two bytes of input ("0,"), so a line
  // longer than this cannot have spilled it past the stack buffer.
  static constexpr std::size_t kLineBytesWithinParserStack =
      kParserStackBytes / sizeof(boost::json::value) * 2;

  void make_parser();

  std::size_t max_json_depth_;
  CountingResource upstream_;
  // Parsed requests live in this arena; for a line that fits it, parsing touches no heap.
  std::array<unsigned char, kArenaBytes> arena_buffer_;
  std::optional<boost::json::monotonic_resource> arena_;
  // The parser's working stacks start in this buffer and spill to the heap for large or deep
  // documents; the parser is made anew after a line that may have spilled.
  std::array<unsigned char, kParserStackBytes> parser_stack_buffer_;
  std::optional<boost::json::parser> parser_;
  bool parser_may_hold_heap_ = false;
  // Heap bytes borrowed by requests since memory release was last asked for.
  std::size_t upstream_bytes_pending_ = 0;
  boost::json::value root_;
};

}  // namespace photon::protocol
