// Webhook signature checks and signing; the header formats are those of GitHub, Stripe and
// https://www.standardwebhooks.com/ (see the contracts in the header).
#include "webhooks/webhook_auth.hpp"

#include "webhooks/crypto_library.hpp"

#include <cctype>
#include <cstdlib>

#include <openssl/core_names.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <memory>
#include <stdexcept>

namespace photon::core {
namespace {

using std::chrono::system_clock;

constexpr std::size_t kHmacBytes = 32;
constexpr std::size_t kHmacHexDigits = 2 * kHmacBytes;
constexpr std::size_t kHmacBase64Chars = 44;  // 32 bytes: 10 groups of 3, then 2 bytes and one '='
using Digest = std::array<unsigned char, kHmacBytes>;

constexpr std::string_view kSecretHeader = "x-webhook-secret";
constexpr std::string_view kGitHubHeader = "x-hub-signature-256";
constexpr std::string_view kStripeHeader = "stripe-signature";
constexpr std::string_view kStandardIdHeader = "webhook-id";
constexpr std::string_view kStandardTimestampHeader = "webhook-timestamp";
constexpr std::string_view kStandardSignatureHeader = "webhook-signature";
constexpr std::string_view kGitHubPrefix = "sha256=";
constexpr std::string_view kStandardSecretPrefix = "whsec_";

constexpr std::string_view kNoSecret = "no secret configured";
constexpr std::string_view kNoMatch = "signature does not match";

// HMAC-SHA256 fed in pieces, so "t.body" is signed without copying the body.
class Hmac {
 public:
  explicit Hmac(std::string_view key) : ctx_(crypto_library().mac_ctx_new(mac())) {
    if (!ctx_) throw std::runtime_error("HMAC-SHA256: cannot allocate a context");
    std::array<OSSL_PARAM, 2> params = {
        crypto_library().param_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        crypto_library().param_end()};
    // A null key means "keep the previous key" to EVP_MAC_init, so an empty key needs a pointer.
    static constexpr unsigned char kNoKey = 0;
    const auto* key_bytes =
        key.empty() ? &kNoKey : reinterpret_cast<const unsigned char*>(key.data());
    if (crypto_library().mac_init(ctx_.get(), key_bytes, key.size(), params.data()) != 1) {
      throw std::runtime_error("HMAC-SHA256: EVP_MAC_init failed");
    }
  }

  Hmac& update(std::string_view data) {
    if (!data.empty() &&
        crypto_library().mac_update(ctx_.get(), reinterpret_cast<const unsigned char*>(data.data()),
                                    data.size()) != 1) {
      throw std::runtime_error("HMAC-SHA256: EVP_MAC_update failed");
    }
    return *this;
  }

  Digest final() {
    Digest out{};
    std::size_t length = 0;
    if (crypto_library().mac_final(ctx_.get(), out.data(), &length, out.size()) != 1 ||
        length != out.size()) {
      throw std::runtime_error("HMAC-SHA256: EVP_MAC_final failed");
    }
    return out;
  }

 private:
  struct Free {
    void operator()(EVP_MAC_CTX* ctx) const { crypto_library().mac_ctx_free(ctx); }
  };

  // Fetched once: fetching looks the algorithm up in the providers, under a lock.
  static EVP_MAC* mac() {
    static EVP_MAC* const fetched =
        crypto_library().mac_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (fetched == nullptr) throw std::runtime_error("HMAC-SHA256: OpenSSL has no HMAC");
    return fetched;
  }

  std::unique_ptr<EVP_MAC_CTX, Free> ctx_;
};

std::string_view as_chars(const Digest& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes exactly hex.size() / 2 bytes into `out`; false unless `hex` is all hex digits of an even
// count.
bool hex_decode_into(std::string_view hex, unsigned char* out) {
  if (hex.size() % 2 != 0) return false;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int high = hex_value(hex[i]);
    const int low = hex_value(hex[i + 1]);
    if (high < 0 || low < 0) return false;
    out[i / 2] = static_cast<unsigned char>(high * 16 + low);
  }
  return true;
}

// The 6-bit value of each base64 character; -1 for anything else ('=' included).
constexpr std::array<signed char, 256> kBase64Values = [] {
  std::array<signed char, 256> values{};
  values.fill(-1);
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    values[static_cast<unsigned char>(kAlphabet[i])] = static_cast<signed char>(i);
  }
  return values;
}();

int base64_value(char c) { return kBase64Values[static_cast<unsigned char>(c)]; }

// Checks that `text` is canonical base64 (see base64_decode); returns the decoded length.
std::optional<std::size_t> base64_decoded_size(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  if (text.empty()) return 0;
  std::size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  const std::size_t data_chars = text.size() - padding;
  for (std::size_t i = 0; i < data_chars; ++i) {
    if (base64_value(text[i]) < 0) return std::nullopt;
  }
  // The bits of the last data character beyond the decoded bytes must be zero.
  const int last = base64_value(text[data_chars - 1]);
  if ((padding == 1 && (last & 0x3) != 0) || (padding == 2 && (last & 0xf) != 0)) {
    return std::nullopt;
  }
  return text.size() / 4 * 3 - padding;
}

// Decodes already validated base64 into `out` (room for text.size() / 4 * 3 bytes). OpenSSL's
// length parameter is an int, hence the chunks (a multiple of 4 characters each, so padding only
// ever ends the last one).
void base64_decode_validated(std::string_view text, unsigned char* out) {
  constexpr std::size_t kChunkChars = std::size_t{4} * 4096;
  for (std::size_t done = 0; done < text.size(); done += kChunkChars) {
    const std::size_t chars = std::min(kChunkChars, text.size() - done);
    const int written = crypto_library().decode_base64(
        out + done / 4 * 3, reinterpret_cast<const unsigned char*>(text.data() + done),
        static_cast<int>(chars));
    if (written < 0) throw std::runtime_error("base64: EVP_DecodeBlock refused validated input");
  }
}

// Decodes `text` if it is canonical base64 of exactly 32 bytes.
std::optional<Digest> base64_digest(std::string_view text) {
  if (text.size() != kHmacBase64Chars || base64_decoded_size(text) != kHmacBytes) {
    return std::nullopt;
  }
  std::array<unsigned char, kHmacBase64Chars / 4 * 3> bytes{};
  base64_decode_validated(text, bytes.data());
  Digest digest{};
  std::copy_n(bytes.begin(), digest.size(), digest.begin());
  return digest;
}

// Unix seconds: decimal digits only (no sign, no space), fitting an int64.
std::optional<std::int64_t> parse_unix_seconds(std::string_view text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::int64_t unix_seconds(system_clock::time_point now) {
  return std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
}

// Why `timestamp` (>= 0) is outside now +- tolerance, or nothing. Unsigned arithmetic: the
// difference of an int64 and a non-negative int64 always fits in a uint64.
std::optional<std::string> timestamp_problem(std::int64_t timestamp, system_clock::time_point now,
                                             std::chrono::seconds tolerance) {
  const std::int64_t now_seconds = unix_seconds(now);
  const auto limit = static_cast<std::uint64_t>(std::max<std::int64_t>(tolerance.count(), 0));
  const bool past = timestamp <= now_seconds;
  const std::uint64_t distance =
      past ? static_cast<std::uint64_t>(now_seconds) - static_cast<std::uint64_t>(timestamp)
           : static_cast<std::uint64_t>(timestamp) - static_cast<std::uint64_t>(now_seconds);
  if (distance <= limit) return std::nullopt;
  return "timestamp is " + std::to_string(distance) + (past ? " s old" : " s in the future") +
         " (tolerance " + std::to_string(limit) + " s)";
}

// Calls `visit(item)` for each piece of `text` between separators (empty pieces included), in
// order, until it returns false; returns whether every call returned true.
template <typename Visit>
bool for_each_item(std::string_view text, char separator, Visit&& visit) {
  while (true) {
    const std::size_t end = text.find(separator);
    if (!visit(text.substr(0, end))) return false;
    if (end == std::string_view::npos) return true;
    text.remove_prefix(end + 1);
  }
}

// Splits "key<separator>value"; `has_value` false when there is no separator.
struct KeyValue {
  std::string_view key;
  std::string_view value;
  bool has_value = false;
};
KeyValue split_item(std::string_view item, char separator) {
  const std::size_t at = item.find(separator);
  if (at == std::string_view::npos) return {item, {}, false};
  return {item.substr(0, at), item.substr(at + 1), true};
}

WebhookAuthResult refuse(std::string reason) { return {false, std::move(reason), {}}; }

// The HMAC key of a kStandard secret; the secret must have passed webhook_secret_problem.
std::string standard_key(std::string_view secret) {
  if (!secret.starts_with(kStandardSecretPrefix)) return std::string(secret);
  return *base64_decode(secret.substr(kStandardSecretPrefix.size()));
}

WebhookAuthResult verify_secret(std::string_view secret, const HeaderLookup& headers) {
  const std::optional<std::string_view> given = headers(kSecretHeader);
  if (!given) return refuse("missing X-Webhook-Secret header");
  // HMACs of both, keyed by the secret: equal lengths whatever was sent, so neither the secret's
  // content nor its length shows in the time taken.
  const Digest expected = Hmac(secret).update(secret).final();
  const Digest actual = Hmac(secret).update(*given).final();
  if (!constant_time_equal(as_chars(actual), as_chars(expected))) {
    return refuse("X-Webhook-Secret does not match");
  }
  return {true, {}, {}};
}

WebhookAuthResult verify_github(std::string_view secret, const HeaderLookup& headers,
                                std::string_view body) {
  const std::optional<std::string_view> given = headers(kGitHubHeader);
  if (!given) return refuse("missing X-Hub-Signature-256 header");
  Digest actual{};
  if (!given->starts_with(kGitHubPrefix) ||
      given->size() != kGitHubPrefix.size() + kHmacHexDigits ||
      !hex_decode_into(given->substr(kGitHubPrefix.size()), actual.data())) {
    return refuse("X-Hub-Signature-256 header is not sha256= followed by 64 hex digits");
  }
  const Digest expected = Hmac(secret).update(body).final();
  if (!constant_time_equal(as_chars(actual), as_chars(expected)))
    return refuse(std::string(kNoMatch));
  return {true, {}, {}};
}

WebhookAuthResult verify_stripe(std::string_view secret, const HeaderLookup& headers,
                                std::string_view body, system_clock::time_point now,
                                std::chrono::seconds tolerance) {
  const std::optional<std::string_view> header = headers(kStripeHeader);
  if (!header) return refuse("missing Stripe-Signature header");

  // First pass: the timestamp, and every v1 well formed. No allocation per item.
  std::optional<std::int64_t> timestamp;
  std::size_t signatures = 0;
  std::string_view problem;
  for_each_item(*header, ',', [&](std::string_view item) {
    const KeyValue pair = split_item(item, '=');
    if (pair.key == "t") {
      if (timestamp) {
        problem = "Stripe-Signature header has more than one t=";
        return false;
      }
      timestamp = pair.has_value ? parse_unix_seconds(pair.value) : std::nullopt;
      if (!timestamp) {
        problem = "Stripe-Signature t= is not a unix time in seconds";
        return false;
      }
    } else if (pair.key == "v1") {
      if (!pair.has_value || pair.value.size() != kHmacHexDigits ||
          !std::all_of(pair.value.begin(), pair.value.end(),
                       [](char c) { return hex_value(c) >= 0; })) {
        problem = "Stripe-Signature v1= is not 64 hex digits";
        return false;
      }
      ++signatures;
    }
    return true;
  });
  if (!problem.empty()) return refuse(std::string(problem));
  if (!timestamp) return refuse("Stripe-Signature header has no t= timestamp");
  if (signatures == 0) return refuse("Stripe-Signature header has no v1= signature");

  const Digest expected =
      Hmac(secret).update(std::to_string(*timestamp)).update(".").update(body).final();
  bool matched = false;
  for_each_item(*header, ',', [&](std::string_view item) {
    const KeyValue pair = split_item(item, '=');
    if (pair.key != "v1") return true;
    Digest actual{};
    hex_decode_into(pair.value, actual.data());
    matched = constant_time_equal(as_chars(actual), as_chars(expected));
    return !matched;
  });
  if (!matched) return refuse(std::string(kNoMatch));
  if (auto stale = timestamp_problem(*timestamp, now, tolerance)) return refuse(std::move(*stale));
  return {true, {}, {}};
}

WebhookAuthResult verify_standard(std::string_view secret, const HeaderLookup& headers,
                                  std::string_view body, system_clock::time_point now,
                                  std::chrono::seconds tolerance) {
  const std::optional<std::string_view> id = headers(kStandardIdHeader);
  if (!id) return refuse("missing webhook-id header");
  if (id->empty()) return refuse("webhook-id header is empty");
  const std::optional<std::string_view> timestamp_text = headers(kStandardTimestampHeader);
  if (!timestamp_text) return refuse("missing webhook-timestamp header");
  const std::optional<std::int64_t> timestamp = parse_unix_seconds(*timestamp_text);
  if (!timestamp) return refuse("webhook-timestamp header is not a unix time in seconds");
  const std::optional<std::string_view> header = headers(kStandardSignatureHeader);
  if (!header) return refuse("missing webhook-signature header");

  // Spaces separate the signatures; runs of them are tolerated (empty items are skipped).
  std::size_t signatures = 0;
  const bool well_formed = for_each_item(*header, ' ', [&](std::string_view item) {
    const KeyValue pair = split_item(item, ',');
    if (pair.key != "v1") return true;
    ++signatures;
    return pair.has_value && base64_digest(pair.value).has_value();
  });
  if (!well_formed) {
    return refuse("webhook-signature v1 is not the base64 of a 32-byte HMAC-SHA256");
  }
  if (signatures == 0) return refuse("webhook-signature header has no v1 signature");

  const Digest expected = Hmac(standard_key(secret))
                              .update(*id)
                              .update(".")
                              .update(std::to_string(*timestamp))
                              .update(".")
                              .update(body)
                              .final();
  bool matched = false;
  for_each_item(*header, ' ', [&](std::string_view item) {
    const KeyValue pair = split_item(item, ',');
    if (pair.key != "v1") return true;
    matched = constant_time_equal(as_chars(*base64_digest(pair.value)), as_chars(expected));
    return !matched;
  });
  if (!matched) return refuse(std::string(kNoMatch));
  if (auto stale = timestamp_problem(*timestamp, now, tolerance)) return refuse(std::move(*stale));
  return {true, {}, std::string(*id)};
}

}  // namespace

std::optional<WebhookScheme> webhook_scheme_from_name(std::string_view name) {
  for (WebhookScheme scheme : {WebhookScheme::kNone, WebhookScheme::kSecret, WebhookScheme::kGitHub,
                               WebhookScheme::kStripe, WebhookScheme::kStandard}) {
    if (webhook_scheme_name(scheme) == name) return scheme;
  }
  return std::nullopt;
}

std::string_view webhook_scheme_name(WebhookScheme scheme) {
  switch (scheme) {
    case WebhookScheme::kNone:
      return "none";
    case WebhookScheme::kSecret:
      return "secret";
    case WebhookScheme::kGitHub:
      return "github";
    case WebhookScheme::kStripe:
      return "stripe";
    case WebhookScheme::kStandard:
      return "standard";
  }
  return "unknown";  // only for a value cast from outside the enumerators
}

std::optional<std::string> webhook_secret_problem(WebhookScheme scheme, std::string_view secret) {
  if (scheme == WebhookScheme::kNone) return std::nullopt;
  if (secret.empty()) return std::string(kNoSecret);
  if (scheme == WebhookScheme::kStandard && secret.starts_with(kStandardSecretPrefix)) {
    const std::optional<std::size_t> key_size =
        base64_decoded_size(secret.substr(kStandardSecretPrefix.size()));
    if (!key_size) return "webhook secret: what follows whsec_ is not base64";
    if (*key_size == 0) return "webhook secret: no key follows whsec_";
  }
  return std::nullopt;
}

WebhookAuthResult verify_webhook(WebhookScheme scheme, std::string_view secret,
                                 const HeaderLookup& headers, std::string_view body,
                                 system_clock::time_point now, std::chrono::seconds tolerance) {
  if (scheme == WebhookScheme::kNone) return {true, {}, {}};
  if (auto problem = webhook_secret_problem(scheme, secret)) return refuse(std::move(*problem));
  switch (scheme) {
    case WebhookScheme::kNone:
      break;
    case WebhookScheme::kSecret:
      return verify_secret(secret, headers);
    case WebhookScheme::kGitHub:
      return verify_github(secret, headers, body);
    case WebhookScheme::kStripe:
      return verify_stripe(secret, headers, body, now, tolerance);
    case WebhookScheme::kStandard:
      return verify_standard(secret, headers, body, now, tolerance);
  }
  return refuse("unknown webhook scheme");
}

std::vector<std::pair<std::string, std::string>> sign_webhook(WebhookScheme scheme,
                                                              std::string_view secret,
                                                              std::string_view body,
                                                              system_clock::time_point now,
                                                              std::string_view delivery_id) {
  if (auto problem = webhook_secret_problem(scheme, secret)) throw std::invalid_argument(*problem);
  const std::string timestamp = std::to_string(unix_seconds(now));
  switch (scheme) {
    case WebhookScheme::kNone:
      return {};
    case WebhookScheme::kSecret:
      return {{"X-Webhook-Secret", std::string(secret)}};
    case WebhookScheme::kGitHub:
      return {{"X-Hub-Signature-256",
               std::string(kGitHubPrefix) + to_hex(as_chars(Hmac(secret).update(body).final()))}};
    case WebhookScheme::kStripe: {
      const Digest digest = Hmac(secret).update(timestamp).update(".").update(body).final();
      return {{"Stripe-Signature", "t=" + timestamp + ",v1=" + to_hex(as_chars(digest))}};
    }
    case WebhookScheme::kStandard: {
      if (delivery_id.empty())
        throw std::invalid_argument("a Standard Webhooks delivery id is empty");
      const Digest digest = Hmac(standard_key(secret))
                                .update(delivery_id)
                                .update(".")
                                .update(timestamp)
                                .update(".")
                                .update(body)
                                .final();
      return {{"webhook-id", std::string(delivery_id)},
              {"webhook-timestamp", timestamp},
              {"webhook-signature", "v1," + base64_encode(as_chars(digest))}};
    }
  }
  throw std::invalid_argument("unknown webhook scheme");
}

// ReplayCache

ReplayCache::ReplayCache(std::chrono::seconds tolerance, std::size_t max_entries)
    : memory_(2 * std::clamp(tolerance, std::chrono::seconds(0), kMaxTolerance)),
      max_entries_(std::max<std::size_t>(max_entries, 1)) {}

bool ReplayCache::first_delivery(std::string_view id, system_clock::time_point now) {
  const system_clock::time_point cutoff = now - memory_;
  forget_before(cutoff);
  auto found = ids_.find(id);
  if (found != ids_.end() && found->second.at > cutoff) return false;
  const std::uint64_t sequence = next_sequence_++;
  if (found == ids_.end()) {
    found = ids_.emplace(std::string(id), Record{now, sequence}).first;
  } else {
    // Expired but not yet forgotten (the clock stepped back earlier): its old entry in order_
    // stays, and no longer erases it (its sequence is not the latest).
    found->second = Record{now, sequence};
  }
  order_.push_back(Entry{now, sequence, found->first});
  while (order_.size() > max_entries_) pop_oldest();
  return true;
}

std::size_t ReplayCache::size() const { return ids_.size(); }

void ReplayCache::forget_before(system_clock::time_point cutoff) {
  while (!order_.empty() && order_.front().at <= cutoff) pop_oldest();
}

void ReplayCache::pop_oldest() {
  const Entry& oldest = order_.front();
  // The id's node exists: only its latest entry erases it, and older entries come first.
  const auto found = ids_.find(oldest.id);
  if (found != ids_.end() && found->second.sequence == oldest.sequence) ids_.erase(found);
  order_.pop_front();
}

// Building blocks

std::string hmac_sha256(std::string_view key, std::string_view data) {
  return std::string(as_chars(Hmac(key).update(data).final()));
}

std::string to_hex(std::string_view bytes) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  std::string hex(2 * bytes.size(), '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    hex[2 * i] = kDigits[byte >> 4];
    hex[2 * i + 1] = kDigits[byte & 0xf];
  }
  return hex;
}

std::optional<std::string> from_hex(std::string_view hex) {
  std::string bytes(hex.size() / 2, '\0');
  if (!hex_decode_into(hex, reinterpret_cast<unsigned char*>(bytes.data()))) return std::nullopt;
  return bytes;
}

std::string base64_encode(std::string_view bytes) {
  // EVP_EncodeBlock takes an int length and writes a NUL after its output; chunks of a multiple
  // of 3 bytes leave padding to the last one, and each NUL is overwritten by the next chunk.
  constexpr std::size_t kChunkBytes = std::size_t{3} * 4096;
  const std::size_t encoded_size = (bytes.size() + 2) / 3 * 4;
  std::string text(encoded_size + 1, '\0');
  auto* out = reinterpret_cast<unsigned char*>(text.data());
  for (std::size_t done = 0; done < bytes.size(); done += kChunkBytes) {
    const std::size_t chunk = std::min(kChunkBytes, bytes.size() - done);
    crypto_library().encode_base64(out + done / 3 * 4,
                                   reinterpret_cast<const unsigned char*>(bytes.data() + done),
                                   static_cast<int>(chunk));
  }
  text.resize(encoded_size);
  return text;
}

std::optional<std::string> base64_decode(std::string_view text) {
  const std::optional<std::size_t> size = base64_decoded_size(text);
  if (!size) return std::nullopt;
  std::string bytes(text.size() / 4 * 3, '\0');
  base64_decode_validated(text, reinterpret_cast<unsigned char*>(bytes.data()));
  bytes.resize(*size);
  return bytes;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // The common prefix is compared, the rest of the longer one compared with itself: the time
  // taken follows the longer length whichever differs, and nothing is read out of bounds.
  static constexpr char kEmpty = 0;
  const std::size_t common = std::min(a.size(), b.size());
  const std::string_view longer = a.size() >= b.size() ? a : b;
  const char* a_data = a.empty() ? &kEmpty : a.data();
  const char* b_data = b.empty() ? &kEmpty : b.data();
  const char* tail = longer.empty() ? &kEmpty : longer.data() + common;
  const int prefix_differs = crypto_library().memcmp_constant_time(a_data, b_data, common);
  const int tail_differs =
      crypto_library().memcmp_constant_time(tail, tail, longer.size() - common);
  return (prefix_differs | tail_differs) == 0 && a.size() == b.size();
}

std::string webhook_secret_variable(WebhookScheme scheme) {
  std::string name = std::string(kWebhookSecretVariable) + "_";
  for (char c : webhook_scheme_name(scheme)) {
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::string webhook_secret_from_environment(WebhookScheme scheme) {
  for (const std::string& variable :
       {webhook_secret_variable(scheme), std::string(kWebhookSecretVariable)}) {
    if (const char* value = std::getenv(variable.c_str()); value != nullptr && *value != '\0')
      return value;
  }
  return {};
}

}  // namespace photon::core
