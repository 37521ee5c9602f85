// Webhook authentication: verifying and producing the signatures of the common webhook schemes
// (a shared secret, GitHub, Stripe, Standard Webhooks), and the replay cache of delivery ids.
// Pure: headers, body and time are passed in; no I/O, no coroutines (also built for libFuzzer).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace photon::core {

// How a webhook request proves that it comes from who holds the secret.
enum class WebhookScheme {
  kNone,      // no check at all
  kSecret,    // X-Webhook-Secret: the secret itself
  kGitHub,    // X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
  kStripe,    // Stripe-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "t.body")>[,v1=...]
  kStandard,  // https://www.standardwebhooks.com/: webhook-id, webhook-timestamp, webhook-signature
};

// The scheme named "none", "secret", "github", "stripe" or "standard" (exactly, lower case);
// nothing for any other text.
std::optional<WebhookScheme> webhook_scheme_from_name(std::string_view name);
// The name webhook_scheme_from_name accepts for `scheme`.
std::string_view webhook_scheme_name(WebhookScheme scheme);

// Where secrets come from (the environment only: a flag would show them to `ps`): the scheme's
// own variable ("PHOTON_WEBHOOK_SECRET_GITHUB"), else the shared one. Both the daemon and
// `photonctl webhook-send` read them this way.
inline constexpr std::string_view kWebhookSecretVariable = "PHOTON_WEBHOOK_SECRET";
std::string webhook_secret_variable(WebhookScheme scheme);
// The secret of `scheme` from the environment, or empty.
std::string webhook_secret_from_environment(WebhookScheme scheme);

// Looks a request header up by its lower-case name: its first value, or nothing when absent.
using HeaderLookup =
    std::function<std::optional<std::string_view>(std::string_view lower_case_name)>;

struct WebhookAuthResult {
  bool ok = false;
  // When !ok: what is wrong, precise and safe to show the caller (e.g. "missing
  // X-Hub-Signature-256 header", "signature does not match", "timestamp is 412 s old (tolerance
  // 300 s)"). Never contains the secret, the expected signature or text taken from the headers.
  std::string reason;
  // kStandard when ok: the (authenticated) webhook-id, for the caller's ReplayCache. Empty
  // otherwise.
  std::string delivery_id;
};

// Why `secret` cannot be used with `scheme` ("no secret configured", a kStandard "whsec_" secret
// that is not base64), or nothing when it can. kNone accepts any secret (it is not used).
//
// Secrets of kStandard: "whsec_<base64>" means the base64-decoded bytes are the HMAC key (the
// Standard Webhooks convention); a secret without that prefix is used as the key byte for byte.
std::optional<std::string> webhook_secret_problem(WebhookScheme scheme, std::string_view secret);

// Checks a request received at `now` against `secret`. Returns ok, or the reason it is refused.
//
// - kNone: always ok.
// - kSecret: X-Webhook-Secret equals the secret (the body is not authenticated). The HMACs of
//   both are compared (keyed by the secret), so the time taken tells nothing about the secret's
//   content or length.
// - kGitHub: X-Hub-Signature-256 is "sha256=" and 64 hex digits (either case) of
//   HMAC-SHA256(secret, body).
// - kStripe: Stripe-Signature is a comma-separated list of key=value items: exactly one
//   t=<unix seconds> and at least one v1=<64 hex digits>; any v1 equal to HMAC-SHA256(secret,
//   "<t>.<body>") passes. Other items (v0=, unknown keys) are ignored. |now - t| <= tolerance.
// - kStandard: webhook-id (non-empty), webhook-timestamp (unix seconds) and webhook-signature, a
//   space-separated list of "<version>,<base64 signature>"; any v1 equal to HMAC-SHA256(key,
//   "<id>.<timestamp>.<body>") passes, other versions are ignored. |now - t| <= tolerance. The key
//   is as webhook_secret_problem describes. Replays are the caller's to refuse, with a
//   ReplayCache and the returned delivery_id.
//
// Timestamps are decimal digits only (no sign), and are signed in their canonical decimal form
// (as the reference libraries do: "t=0012" signs "12."). The signature is checked before the
// timestamp, so only a holder of the secret learns that the clocks disagree. The signatures the
// scheme uses must all be well formed (a v1 that is not 64 hex digits makes the header malformed);
// what the scheme ignores may be anything.
//
// Cost: linear in the sizes of the headers and the body, with no allocation per header item; one
// HMAC of the body whatever the number of signatures. May throw only what the allocator or
// hmac_sha256 throws.
WebhookAuthResult verify_webhook(WebhookScheme scheme, std::string_view secret,
                                 const HeaderLookup& headers, std::string_view body,
                                 std::chrono::system_clock::time_point now,
                                 std::chrono::seconds tolerance = std::chrono::minutes(5));

// The headers a sender adds to authenticate `body` sent at `now` (for photonctl webhook-send and
// tests), as name/value pairs: none for kNone; X-Webhook-Secret; X-Hub-Signature-256;
// Stripe-Signature "t=..,v1=.."; webhook-id, webhook-timestamp and webhook-signature "v1,..".
// `delivery_id` is the webhook-id of kStandard and unused by the others. Throws
// std::invalid_argument when webhook_secret_problem finds a problem with `secret`, or when
// kStandard is given an empty `delivery_id`.
std::vector<std::pair<std::string, std::string>> sign_webhook(
    WebhookScheme scheme, std::string_view secret, std::string_view body,
    std::chrono::system_clock::time_point now, std::string_view delivery_id);

// Remembers the delivery ids of accepted Standard Webhooks requests, to refuse replays.
//
// An id is remembered for twice the verification tolerance: a request may carry a timestamp up to
// `tolerance` in the future, and verify_webhook accepts it until `tolerance` after that timestamp,
// so a shorter memory would let a replay through. Construct it with the tolerance given to
// verify_webhook.
//
// Invariants: at most max_entries ids (the oldest recorded is forgotten first when a new one
// comes: under a flood of more distinct ids than that within the window, the oldest ones become
// replayable); an id recorded at time r is forgotten once now >= r + 2 * tolerance. Memory and
// time per call are O(1) amortized (plus hashing the id). If the system clock steps back, ids are
// remembered longer, never shorter.
//
// Thread rule: not synchronized; one thread (the event loop) uses it.
class ReplayCache {
 public:
  // Tolerances beyond this are taken as this (and negative ones as zero).
  static constexpr std::chrono::seconds kMaxTolerance = std::chrono::hours(24 * 366);

  // max_entries is at least 1 (0 is taken as 1).
  explicit ReplayCache(std::chrono::seconds tolerance = std::chrono::minutes(5),
                       std::size_t max_entries = 100'000);

  // True, and records `id` at `now`, when `id` was not recorded within the last 2 * tolerance;
  // false for a replay (the record is left as it was).
  bool first_delivery(std::string_view id, std::chrono::system_clock::time_point now);

  // The number of distinct ids remembered (expired ones are forgotten by first_delivery).
  std::size_t size() const;

 private:
  struct Record {
    std::chrono::system_clock::time_point at;
    std::uint64_t sequence;  // which entry of order_ is this id's latest
  };
  struct Hash {
    using is_transparent = void;  // lookups by string_view, without a copy
    std::size_t operator()(std::string_view id) const { return std::hash<std::string_view>()(id); }
  };
  struct Entry {
    std::chrono::system_clock::time_point at;
    std::uint64_t sequence;
    std::string_view id;  // the key of ids_ (node-based: stable until erased)
  };

  void forget_before(std::chrono::system_clock::time_point cutoff);
  void pop_oldest();

  std::chrono::system_clock::duration memory_;
  std::size_t max_entries_;
  std::uint64_t next_sequence_ = 0;
  std::unordered_map<std::string, Record, Hash, std::equal_to<>> ids_;
  std::deque<Entry> order_;  // in recording order; an id re-recorded after expiry appears twice
};

// Building blocks (OpenSSL underneath). Those that use it (hmac_sha256, base64_encode,
// base64_decode, constant_time_equal, and so verify_webhook) load libcrypto at their first call
// (webhooks/crypto_library.hpp) and throw std::runtime_error when it cannot be loaded.

// The raw 32 bytes of HMAC-SHA256(key, data); any key length, including empty. Throws
// std::runtime_error if OpenSSL fails (out of memory, no SHA-256 in the loaded providers).
std::string hmac_sha256(std::string_view key, std::string_view data);

// Lower-case hex of `bytes`.
std::string to_hex(std::string_view bytes);
// The bytes of `hex` (an even number of digits of either case), or nothing.
std::optional<std::string> from_hex(std::string_view hex);

// Standard base64 (RFC 4648 section 4: "+/" alphabet, "=" padding).
std::string base64_encode(std::string_view bytes);
// The bytes of `text`, or nothing unless it is canonical base64: a multiple of 4 characters of the
// alphabet, at most two "=" only at the end, unused bits zero (so decoding is the exact inverse of
// base64_encode). No whitespace, no line breaks.
std::optional<std::string> base64_decode(std::string_view text);

// Whether a and b are equal, in a time that depends on their lengths only, never on their
// content, and without returning early when the lengths differ (CRYPTO_memcmp over the longer
// length). When a length is itself secret, compare HMACs instead (as kSecret does).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace photon::core
