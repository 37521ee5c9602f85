// Unit tests of webhook authentication: known-answer vectors (RFC 4231, GitHub's and Standard
// Webhooks' published examples, a Stripe vector computed with python3), every way a request can be
// refused, sign/verify round trips, the replay cache, and headers of a megabyte.
#include "webhooks/webhook_auth.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>

namespace photon::core {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

system_clock::time_point at(std::int64_t unix_seconds) {
  return system_clock::time_point(seconds(unix_seconds));
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Request headers; names are matched without regard to case, as HTTP does.
class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<std::pair<std::string, std::string>> headers) {
    for (const auto& [name, value] : headers) set(name, value);
  }
  explicit Headers(const std::vector<std::pair<std::string, std::string>>& headers) {
    for (const auto& [name, value] : headers) set(name, value);
  }
  void set(std::string_view name, std::string value) { values_[lower(name)] = std::move(value); }
  void erase(std::string_view name) { values_.erase(lower(name)); }

  [[nodiscard]] HeaderLookup lookup() const {
    return [this](std::string_view name) -> std::optional<std::string_view> {
      const auto found = values_.find(std::string(name));
      if (found == values_.end()) return std::nullopt;
      return std::string_view(found->second);
    };
  }

 private:
  std::map<std::string, std::string> values_;
};

WebhookAuthResult verify(WebhookScheme scheme, std::string_view secret, const Headers& headers,
                         std::string_view body, system_clock::time_point now) {
  return verify_webhook(scheme, secret, headers.lookup(), body, now);
}

std::string unhex(std::string_view hex) { return from_hex(hex).value(); }

// --- Names ---

TEST(WebhookSchemeTest, NamesRoundTripExactlyInLowerCase) {
  for (WebhookScheme scheme : {WebhookScheme::kNone, WebhookScheme::kSecret, WebhookScheme::kGitHub,
                               WebhookScheme::kStripe, WebhookScheme::kStandard}) {
    EXPECT_EQ(webhook_scheme_from_name(webhook_scheme_name(scheme)), scheme);
  }
  EXPECT_EQ(webhook_scheme_name(WebhookScheme::kGitHub), "github");
  EXPECT_EQ(webhook_scheme_name(WebhookScheme::kStandard), "standard");
  for (std::string_view name :
       {"", "GitHub", "NONE", " none", "stripe ", "hmac", "standard-webhooks"}) {
    EXPECT_FALSE(webhook_scheme_from_name(name).has_value()) << name;
  }
}

// --- Building blocks ---

// RFC 4231 section 4, test cases 1-4 (HMAC-SHA-256 lines), checked against python3's hmac too.
TEST(HmacSha256Test, Rfc4231TestCases1To4) {
  EXPECT_EQ(to_hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(to_hex(hmac_sha256(std::string(20, '\xaa'), std::string(50, '\xdd'))),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  EXPECT_EQ(to_hex(hmac_sha256(unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                               std::string(50, '\xcd'))),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

// python3: hmac.new(b"", b"", hashlib.sha256).hexdigest()
TEST(HmacSha256Test, EmptyKeyAndData) {
  EXPECT_EQ(to_hex(hmac_sha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ(hmac_sha256("k", "").size(), 32u);
}

TEST(HexTest, EncodesLowerCaseAndDecodesEitherCase) {
  EXPECT_EQ(to_hex(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(to_hex(""), "");
  EXPECT_EQ(from_hex("0001abff"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(from_hex("0001ABFF"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(from_hex(""), std::string());
}

TEST(HexTest, RejectsOddLengthAndNonDigits) {
  for (std::string_view bad : {"0", "abc", "0g", "zz", " 00", "00 ", "0x00", "-1"}) {
    EXPECT_FALSE(from_hex(bad).has_value()) << bad;
  }
}

// RFC 4648 section 10.
TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {{"", ""},
                                                                   {"f", "Zg=="},
                                                                   {"fo", "Zm8="},
                                                                   {"foo", "Zm9v"},
                                                                   {"foob", "Zm9vYg=="},
                                                                   {"fooba", "Zm9vYmE="},
                                                                   {"foobar", "Zm9vYmFy"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64_encode(bytes), text);
    EXPECT_EQ(base64_decode(text), std::string(bytes)) << text;
  }
  EXPECT_EQ(base64_encode(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(Base64Test, RoundTripsEveryLengthAndLargeInputs) {
  std::string bytes;
  for (std::size_t length = 0; length < 300; ++length) {
    const std::string text = base64_encode(bytes);
    ASSERT_EQ(base64_decode(text), bytes) << length;
    bytes.push_back(static_cast<char>(length * 37 + 11));
  }
  // Beyond OpenSSL's chunks (the encoder and decoder go 12 KiB / 16 KiB at a time).
  std::string large(1 << 20, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 131 + i / 7);
  for (std::size_t size : {large.size(), large.size() - 1, large.size() - 2, std::size_t{12289}}) {
    const std::string part = large.substr(0, size);
    const std::string text = base64_encode(part);
    ASSERT_EQ(text.size(), (size + 2) / 3 * 4);
    ASSERT_EQ(base64_decode(text), part) << size;
  }
}

TEST(Base64Test, RejectsAnythingButCanonicalBase64) {
  for (std::string_view bad :
       {"Z", "Zg", "Zg=", "Zg===", "====", "=Zg=", "Z===", "Zg==Zg==", "Zm9v\n", " Zm9v", "Zm 9v",
        "Zm9v\r\n", "Zm-v", "Zm_v", "Zm9*", "Zh==", "Zm9=", "QR=="}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(base64_decode(std::string("Zm9v\0\0\0\0", 8)).has_value());
}

TEST(ConstantTimeEqualTest, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "xbc"));
  // Different lengths, in both orders, a prefix included; nothing read beyond either.
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("abcd", "abc"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_FALSE(constant_time_equal("a", ""));
  EXPECT_FALSE(constant_time_equal(std::string("abc\0", 4), "abc"));
  EXPECT_FALSE(constant_time_equal(std::string(1000, 'x'), "x"));
}

// --- Every scheme ---

TEST(WebhookVerifyTest, NoneAcceptsAnything) {
  EXPECT_TRUE(verify(WebhookScheme::kNone, "", {}, "body", at(0)).ok);
  EXPECT_TRUE(
      verify(WebhookScheme::kNone, "ignored", {{"X-Hub-Signature-256", "junk"}}, "", at(0)).ok);
}

TEST(WebhookVerifyTest, EmptySecretIsRefusedByEveryCheckingScheme) {
  const Headers headers{{"X-Webhook-Secret", ""}};
  for (WebhookScheme scheme : {WebhookScheme::kSecret, WebhookScheme::kGitHub,
                               WebhookScheme::kStripe, WebhookScheme::kStandard}) {
    const WebhookAuthResult result = verify(scheme, "", headers, "", at(0));
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.reason, "no secret configured") << webhook_scheme_name(scheme);
    EXPECT_EQ(webhook_secret_problem(scheme, ""), "no secret configured");
    EXPECT_THROW(sign_webhook(scheme, "", "", at(0), "id"), std::invalid_argument);
  }
  EXPECT_FALSE(webhook_secret_problem(WebhookScheme::kNone, "").has_value());
}

// --- kSecret ---

TEST(WebhookVerifyTest, SecretHeaderMustEqualTheSecret) {
  const std::string_view secret = "s3cr3t-value";
  EXPECT_TRUE(
      verify(WebhookScheme::kSecret, secret, {{"X-Webhook-Secret", "s3cr3t-value"}}, "b", at(0))
          .ok);

  for (std::string_view wrong :
       {"s3cr3t-valuf", "S3cr3t-value", "s3cr3t-valu", "s3cr3t-value!", "", "s3cr3t-value\n"}) {
    const WebhookAuthResult result = verify(WebhookScheme::kSecret, secret,
                                            {{"X-Webhook-Secret", std::string(wrong)}}, "b", at(0));
    EXPECT_FALSE(result.ok) << wrong;
    EXPECT_EQ(result.reason, "X-Webhook-Secret does not match");
    EXPECT_EQ(result.reason.find(secret), std::string::npos);
  }
  const WebhookAuthResult missing =
      verify(WebhookScheme::kSecret, secret, {{"Authorization", "x"}}, "b", at(0));
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.reason, "missing X-Webhook-Secret header");
}

// --- kGitHub ---

// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries (testing the
// webhook payload validation); recomputed with python3 hmac before being written here.
constexpr std::string_view kGitHubSecret = "It's a Secret to Everybody";
constexpr std::string_view kGitHubBody = "Hello, World!";
constexpr std::string_view kGitHubSignature =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

TEST(WebhookVerifyTest, GitHubDocumentedVector) {
  EXPECT_TRUE(verify(WebhookScheme::kGitHub, kGitHubSecret,
                     {{"X-Hub-Signature-256", std::string(kGitHubSignature)}}, kGitHubBody, at(0))
                  .ok);
  const auto signed_headers =
      sign_webhook(WebhookScheme::kGitHub, kGitHubSecret, kGitHubBody, at(0), "");
  ASSERT_EQ(signed_headers.size(), 1u);
  EXPECT_EQ(signed_headers[0].first, "X-Hub-Signature-256");
  EXPECT_EQ(signed_headers[0].second, kGitHubSignature);
}

TEST(WebhookVerifyTest, GitHubAcceptsUpperCaseHex) {
  const std::string upper = "sha256=" + std::string(kGitHubSignature.substr(7));
  std::string hex = upper.substr(7);
  std::transform(hex.begin(), hex.end(), hex.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  EXPECT_TRUE(verify(WebhookScheme::kGitHub, kGitHubSecret,
                     {{"X-Hub-Signature-256", "sha256=" + hex}}, kGitHubBody, at(0))
                  .ok);
}

TEST(WebhookVerifyTest, GitHubRefusals) {
  const Headers good{{"X-Hub-Signature-256", std::string(kGitHubSignature)}};
  // The same length, one character off.
  const WebhookAuthResult wrong_secret =
      verify(WebhookScheme::kGitHub, "It's a Secret to Everybodz", good, kGitHubBody, at(0));
  EXPECT_FALSE(wrong_secret.ok);
  EXPECT_EQ(wrong_secret.reason, "signature does not match");
  EXPECT_EQ(wrong_secret.reason.find("757107"), std::string::npos);

  const WebhookAuthResult tampered =
      verify(WebhookScheme::kGitHub, kGitHubSecret, good, "Hello, World?", at(0));
  EXPECT_FALSE(tampered.ok);
  EXPECT_EQ(tampered.reason, "signature does not match");

  const WebhookAuthResult missing =
      verify(WebhookScheme::kGitHub, kGitHubSecret, {}, kGitHubBody, at(0));
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.reason, "missing X-Hub-Signature-256 header");

  const std::string hex(kGitHubSignature.substr(7));
  for (const std::string& bad :
       {hex, "sha1=" + hex, "SHA256=" + hex, "sha256 =" + hex, "sha256=" + hex.substr(1),
        "sha256=" + hex + "0", "sha256=" + hex.substr(0, 63) + "g", "sha256= " + hex.substr(1),
        std::string("sha256="), std::string()}) {
    const WebhookAuthResult result = verify(WebhookScheme::kGitHub, kGitHubSecret,
                                            {{"X-Hub-Signature-256", bad}}, kGitHubBody, at(0));
    EXPECT_FALSE(result.ok) << bad;
    EXPECT_EQ(result.reason, "X-Hub-Signature-256 header is not sha256= followed by 64 hex digits")
        << bad;
  }
}

// --- kStripe ---

// Derived with python3:
//   hmac.new(b"whsec_test_secret", b'1700000000.{"id":"evt_1","object":"event"}',
//            hashlib.sha256).hexdigest()
// Stripe uses the whole secret, "whsec_" included, as the key (no base64 decoding).
constexpr std::string_view kStripeSecret = "whsec_test_secret";
constexpr std::string_view kStripeBody = R"({"id":"evt_1","object":"event"})";
constexpr std::int64_t kStripeTime = 1700000000;
constexpr std::string_view kStripeV1 =
    "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd";

Headers stripe(std::string value) { return {{"Stripe-Signature", std::move(value)}}; }

WebhookAuthResult verify_stripe_at(std::string value, std::int64_t now = kStripeTime,
                                   std::string_view body = kStripeBody,
                                   std::string_view secret = kStripeSecret) {
  return verify(WebhookScheme::kStripe, secret, stripe(std::move(value)), body, at(now));
}

TEST(WebhookVerifyTest, StripeComputedVector) {
  const std::string header = "t=1700000000,v1=" + std::string(kStripeV1);
  EXPECT_TRUE(verify_stripe_at(header).ok);
  EXPECT_EQ(sign_webhook(WebhookScheme::kStripe, kStripeSecret, kStripeBody, at(kStripeTime), ""),
            (std::vector<std::pair<std::string, std::string>>{{"Stripe-Signature", header}}));
  // Stripe's own headers also carry a v0 (test mode) and may gain other items: ignored.
  EXPECT_TRUE(verify_stripe_at(header + ",v0=zz-not-hex,scheme2=abc,junk").ok);
  // Items in any order; leading zeros in t are signed in canonical form, as Stripe's libraries do.
  EXPECT_TRUE(verify_stripe_at("v1=" + std::string(kStripeV1) + ",t=01700000000").ok);
}

TEST(WebhookVerifyTest, StripeAnyV1MayMatch) {
  const std::string other(64, 'a');
  EXPECT_TRUE(verify_stripe_at("t=1700000000,v1=" + other + ",v1=" + std::string(kStripeV1)).ok);
  const WebhookAuthResult none_match =
      verify_stripe_at("t=1700000000,v1=" + other + ",v1=" + other);
  EXPECT_FALSE(none_match.ok);
  EXPECT_EQ(none_match.reason, "signature does not match");
}

TEST(WebhookVerifyTest, StripeRefusals) {
  const std::string v1 = "v1=" + std::string(kStripeV1);
  const std::string good = "t=1700000000," + v1;
  // Wrong secret of the same length; tampered body; a timestamp changed (it is signed).
  EXPECT_EQ(verify_stripe_at(good, kStripeTime, kStripeBody, "whsec_test_secreT").reason,
            "signature does not match");
  EXPECT_EQ(verify_stripe_at(good, kStripeTime, R"({"id":"evt_2","object":"event"})").reason,
            "signature does not match");
  EXPECT_EQ(verify_stripe_at("t=1700000001," + v1).reason, "signature does not match");

  const WebhookAuthResult missing =
      verify(WebhookScheme::kStripe, kStripeSecret, {{"X-Hub-Signature-256", "x"}}, kStripeBody,
             at(kStripeTime));
  EXPECT_EQ(missing.reason, "missing Stripe-Signature header");

  EXPECT_EQ(verify_stripe_at(v1).reason, "Stripe-Signature header has no t= timestamp");
  EXPECT_EQ(verify_stripe_at("").reason, "Stripe-Signature header has no t= timestamp");
  EXPECT_EQ(verify_stripe_at("t=1700000000").reason,
            "Stripe-Signature header has no v1= signature");
  EXPECT_EQ(verify_stripe_at("t=1700000000,v0=" + std::string(kStripeV1)).reason,
            "Stripe-Signature header has no v1= signature");
  for (std::string_view t : {"t=", "t", "t=abc", "t=17e8", "t=-1700000000", "t=+1700000000",
                             "t= 1700000000", "t=1700000000.5", "t=99999999999999999999"}) {
    EXPECT_EQ(verify_stripe_at(std::string(t) + "," + v1).reason,
              "Stripe-Signature t= is not a unix time in seconds")
        << t;
  }
  EXPECT_EQ(verify_stripe_at("t=1700000000,t=1700000000," + v1).reason,
            "Stripe-Signature header has more than one t=");
  const std::string hex(kStripeV1);
  for (const std::string& bad :
       {std::string("v1"), std::string("v1="), "v1=" + hex.substr(1), "v1=" + hex + "0",
        "v1=" + hex.substr(0, 63) + "x", "v1= " + hex.substr(1)}) {
    // Malformed even when another v1 matches: the sender is broken.
    EXPECT_EQ(verify_stripe_at(good + "," + bad).reason,
              "Stripe-Signature v1= is not 64 hex digits")
        << bad;
  }
}

TEST(WebhookVerifyTest, StripeUpperCaseHexMatches) {
  std::string upper(kStripeV1);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  EXPECT_TRUE(verify_stripe_at("t=1700000000,v1=" + upper).ok);
}

TEST(WebhookVerifyTest, StripeTimestampToleranceBothWays) {
  const std::string good = "t=1700000000,v1=" + std::string(kStripeV1);
  EXPECT_TRUE(verify_stripe_at(good, kStripeTime + 300).ok);
  EXPECT_TRUE(verify_stripe_at(good, kStripeTime - 300).ok);
  EXPECT_EQ(verify_stripe_at(good, kStripeTime + 301).reason,
            "timestamp is 301 s old (tolerance 300 s)");
  EXPECT_EQ(verify_stripe_at(good, kStripeTime + 412).reason,
            "timestamp is 412 s old (tolerance 300 s)");
  EXPECT_EQ(verify_stripe_at(good, kStripeTime - 301).reason,
            "timestamp is 301 s in the future (tolerance 300 s)");
  EXPECT_EQ(verify_stripe_at(good, 0).reason,
            "timestamp is 1700000000 s in the future (tolerance 300 s)");
  // Sub-second parts of now do not count: 300.9 s after t is 300 s.
  EXPECT_TRUE(verify_webhook(WebhookScheme::kStripe, kStripeSecret, stripe(good).lookup(),
                             kStripeBody, at(kStripeTime + 300) + std::chrono::milliseconds(900))
                  .ok);
  // A custom tolerance, and a negative one taken as zero.
  EXPECT_EQ(verify_webhook(WebhookScheme::kStripe, kStripeSecret, stripe(good).lookup(),
                           kStripeBody, at(kStripeTime + 11), seconds(10))
                .reason,
            "timestamp is 11 s old (tolerance 10 s)");
  EXPECT_TRUE(verify_webhook(WebhookScheme::kStripe, kStripeSecret, stripe(good).lookup(),
                             kStripeBody, at(kStripeTime), seconds(-5))
                  .ok);
}

TEST(WebhookVerifyTest, TimestampsFarFromNowDoNotOverflow) {
  const std::string t = "9223372036854775807";  // INT64_MAX
  const std::string v1 = to_hex(hmac_sha256(kStripeSecret, t + "." + std::string(kStripeBody)));
  const auto before_1970 = system_clock::time_point(
      std::chrono::duration_cast<system_clock::duration>(seconds(-4'000'000'000)));
  const WebhookAuthResult far =
      verify_webhook(WebhookScheme::kStripe, kStripeSecret, stripe("t=" + t + ",v1=" + v1).lookup(),
                     kStripeBody, before_1970);
  EXPECT_EQ(far.reason, "timestamp is 9223372040854775807 s in the future (tolerance 300 s)");
}

// --- kStandard ---

// The example of the Standard Webhooks libraries' tests and spec; recomputed with python3
// (base64-decode the part after whsec_, HMAC-SHA256 of "id.timestamp.body", base64).
constexpr std::string_view kStandardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kStandardId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t kStandardTime = 1614265330;
constexpr std::string_view kStandardBody = R"({"test": 2432232314})";
constexpr std::string_view kStandardSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

Headers standard(std::string signature = std::string(kStandardSignature)) {
  return {{"webhook-id", std::string(kStandardId)},
          {"webhook-timestamp", std::to_string(kStandardTime)},
          {"webhook-signature", std::move(signature)}};
}

WebhookAuthResult verify_standard_at(const Headers& headers, std::int64_t now = kStandardTime,
                                     std::string_view body = kStandardBody,
                                     std::string_view secret = kStandardSecret) {
  return verify(WebhookScheme::kStandard, secret, headers, body, at(now));
}

TEST(WebhookVerifyTest, StandardPublishedVector) {
  const WebhookAuthResult result = verify_standard_at(standard());
  EXPECT_TRUE(result.ok) << result.reason;
  EXPECT_EQ(result.delivery_id, kStandardId);
  EXPECT_EQ(sign_webhook(WebhookScheme::kStandard, kStandardSecret, kStandardBody,
                         at(kStandardTime), kStandardId),
            (std::vector<std::pair<std::string, std::string>>{
                {"webhook-id", std::string(kStandardId)},
                {"webhook-timestamp", "1614265330"},
                {"webhook-signature", std::string(kStandardSignature)}}));
}

// python3: base64.b64encode(hmac.new(b"raw-secret-bytes", b"msg_1.1614265330.{}",
//                                    hashlib.sha256).digest())
TEST(WebhookVerifyTest, StandardSecretWithoutPrefixIsTheRawKey) {
  const Headers headers{{"webhook-id", "msg_1"},
                        {"webhook-timestamp", "1614265330"},
                        {"webhook-signature", "v1,jqA5deW4c8nez+e0gHGUcs2nzk/SrZB/Mzqze2oWKrw="}};
  EXPECT_TRUE(verify_standard_at(headers, kStandardTime, "{}", "raw-secret-bytes").ok);
}

TEST(WebhookVerifyTest, StandardBadSecrets) {
  for (std::string_view secret :
       {"whsec_", "whsec_not base64!", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"}) {
    const WebhookAuthResult result =
        verify_standard_at(standard(), kStandardTime, kStandardBody, secret);
    EXPECT_FALSE(result.ok) << secret;
    EXPECT_TRUE(result.reason.starts_with("webhook secret: ")) << result.reason;
    EXPECT_EQ(result.reason.find("MfKQ"), std::string::npos);
    EXPECT_THROW(sign_webhook(WebhookScheme::kStandard, secret, "", at(0), "id"),
                 std::invalid_argument);
  }
  EXPECT_EQ(webhook_secret_problem(WebhookScheme::kStandard, "whsec_"),
            "webhook secret: no key follows whsec_");
  // Other schemes take "whsec_..." as it is.
  EXPECT_FALSE(webhook_secret_problem(WebhookScheme::kStripe, "whsec_not base64!").has_value());
}

TEST(WebhookVerifyTest, StandardRefusals) {
  // Wrong key of the same length: one base64 character changed.
  EXPECT_EQ(verify_standard_at(standard(), kStandardTime, kStandardBody,
                               "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx")
                .reason,
            "signature does not match");
  EXPECT_EQ(verify_standard_at(standard(), kStandardTime, R"({"test": 2432232315})").reason,
            "signature does not match");
  Headers other_id = standard();
  other_id.set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJel");
  EXPECT_EQ(verify_standard_at(other_id).reason, "signature does not match");
  Headers other_time = standard();
  other_time.set("webhook-timestamp", "1614265331");
  EXPECT_EQ(verify_standard_at(other_time).reason, "signature does not match");

  for (std::string_view name : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
    Headers headers = standard();
    headers.erase(name);
    const WebhookAuthResult result = verify_standard_at(headers);
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.reason, "missing " + std::string(name) + " header");
    EXPECT_TRUE(result.delivery_id.empty());
  }
  Headers empty_id = standard();
  empty_id.set("webhook-id", "");
  EXPECT_EQ(verify_standard_at(empty_id).reason, "webhook-id header is empty");

  for (std::string_view t : {"", "abc", "-1614265330", "1614265330.0", " 1614265330", "1.6e9"}) {
    Headers headers = standard();
    headers.set("webhook-timestamp", std::string(t));
    EXPECT_EQ(verify_standard_at(headers).reason,
              "webhook-timestamp header is not a unix time in seconds")
        << t;
  }

  const std::string base64(kStandardSignature.substr(3));
  for (const std::string& bad :
       {std::string("v1"), std::string("v1,"), "v1," + base64.substr(0, 43),
        "v1," + base64.substr(0, 43) + "*", "v1," + base64 + "AAAA", std::string("v1,AAAA"),
        std::string("v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        std::string(kStandardSignature) + " v1,not-base64"}) {
    const WebhookAuthResult result = verify_standard_at(standard(bad));
    EXPECT_FALSE(result.ok) << bad;
    EXPECT_EQ(result.reason, "webhook-signature v1 is not the base64 of a 32-byte HMAC-SHA256")
        << bad;
  }
  EXPECT_EQ(verify_standard_at(standard("")).reason,
            "webhook-signature header has no v1 signature");
  EXPECT_EQ(verify_standard_at(standard("v1a," + base64 + " v2," + base64)).reason,
            "webhook-signature header has no v1 signature");
}

TEST(WebhookVerifyTest, StandardAnyV1MayMatchAndOtherVersionsAreIgnored) {
  const std::string other = "v1," + base64_encode(std::string(32, 'x'));
  EXPECT_TRUE(verify_standard_at(standard(other + " " + std::string(kStandardSignature))).ok);
  EXPECT_TRUE(
      verify_standard_at(standard("v1a,whatever  v2 " + std::string(kStandardSignature) + " ")).ok);
  EXPECT_EQ(verify_standard_at(standard(other)).reason, "signature does not match");
}

TEST(WebhookVerifyTest, StandardTimestampToleranceBothWays) {
  EXPECT_TRUE(verify_standard_at(standard(), kStandardTime + 300).ok);
  EXPECT_TRUE(verify_standard_at(standard(), kStandardTime - 300).ok);
  const WebhookAuthResult old = verify_standard_at(standard(), kStandardTime + 412);
  EXPECT_FALSE(old.ok);
  EXPECT_EQ(old.reason, "timestamp is 412 s old (tolerance 300 s)");
  EXPECT_TRUE(old.delivery_id.empty());
  EXPECT_EQ(verify_standard_at(standard(), kStandardTime - 301).reason,
            "timestamp is 301 s in the future (tolerance 300 s)");
}

// --- Round trips ---

TEST(WebhookSignTest, EverySchemeVerifiesWhatItSigns) {
  const std::string body = "{\"event\":\"push\",\"n\":1}\n\x01\xff";
  const system_clock::time_point now = at(1'750'000'000) + std::chrono::milliseconds(250);
  const std::pair<WebhookScheme, std::string_view> cases[] = {
      {WebhookScheme::kNone, ""},
      {WebhookScheme::kSecret, "a shared secret"},
      {WebhookScheme::kGitHub, "github secret"},
      {WebhookScheme::kStripe, "whsec_stripe_style"},
      {WebhookScheme::kStandard, kStandardSecret},
      {WebhookScheme::kStandard, "a raw key"},
  };
  for (const auto& [scheme, secret] : cases) {
    SCOPED_TRACE(webhook_scheme_name(scheme));
    const Headers headers(sign_webhook(scheme, secret, body, now, "msg_42"));
    const WebhookAuthResult result =
        verify_webhook(scheme, secret, headers.lookup(), body, now + seconds(299));
    EXPECT_TRUE(result.ok) << result.reason;
    EXPECT_EQ(result.delivery_id, scheme == WebhookScheme::kStandard ? "msg_42" : "");
    if (scheme != WebhookScheme::kNone && scheme != WebhookScheme::kSecret) {  // body not signed
      EXPECT_FALSE(verify_webhook(scheme, secret, headers.lookup(), body + " ", now).ok);
    }
    if (scheme != WebhookScheme::kNone) {
      EXPECT_FALSE(
          verify_webhook(scheme, std::string(secret) + "x", headers.lookup(), body, now).ok);
    }
  }
  EXPECT_TRUE(sign_webhook(WebhookScheme::kNone, "", body, now, "").empty());
  EXPECT_THROW(sign_webhook(WebhookScheme::kStandard, kStandardSecret, body, now, ""),
               std::invalid_argument);
}

// --- ReplayCache ---

TEST(ReplayCacheTest, RefusesAReplayWithinTheWindow) {
  ReplayCache cache(seconds(300));
  EXPECT_TRUE(cache.first_delivery("msg_1", at(1000)));
  EXPECT_FALSE(cache.first_delivery("msg_1", at(1000)));
  EXPECT_FALSE(cache.first_delivery("msg_1", at(1599)));
  EXPECT_TRUE(cache.first_delivery("msg_2", at(1001)));
  EXPECT_EQ(cache.size(), 2u);
}

// A request stamped `tolerance` ahead stays acceptable until 2 * tolerance after it arrived.
TEST(ReplayCacheTest, RemembersForTwiceTheToleranceThenForgets) {
  ReplayCache cache(seconds(300));
  EXPECT_TRUE(cache.first_delivery("msg_1", at(1000)));
  EXPECT_FALSE(cache.first_delivery("msg_1", at(1000 + 600) - std::chrono::nanoseconds(1000)));
  EXPECT_TRUE(cache.first_delivery("msg_1", at(1000 + 600)));
  EXPECT_FALSE(cache.first_delivery("msg_1", at(1000 + 601)));
  EXPECT_TRUE(cache.first_delivery("msg_2", at(5000)));
  EXPECT_EQ(cache.size(), 1u);  // msg_1 forgotten
}

TEST(ReplayCacheTest, BoundedOldestEvictedFirst) {
  ReplayCache cache(seconds(300), 3);
  EXPECT_TRUE(cache.first_delivery("a", at(1000)));
  EXPECT_TRUE(cache.first_delivery("b", at(1001)));
  EXPECT_TRUE(cache.first_delivery("c", at(1002)));
  EXPECT_TRUE(cache.first_delivery("d", at(1003)));  // evicts a
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.first_delivery("b", at(1004)));
  EXPECT_FALSE(cache.first_delivery("d", at(1004)));
  EXPECT_TRUE(cache.first_delivery("a", at(1005)));  // forgotten by eviction; evicts b
  EXPECT_TRUE(cache.first_delivery("b", at(1006)));
  EXPECT_EQ(cache.size(), 3u);

  ReplayCache one(seconds(300), 0);  // taken as 1
  EXPECT_TRUE(one.first_delivery("a", at(0)));
  EXPECT_FALSE(one.first_delivery("a", at(0)));
  EXPECT_TRUE(one.first_delivery("b", at(0)));
  EXPECT_TRUE(one.first_delivery("a", at(0)));
  EXPECT_EQ(one.size(), 1u);
}

TEST(ReplayCacheTest, ClockSteppingBackKeepsIdsLongerNeverShorter) {
  ReplayCache cache(seconds(10), 100);
  EXPECT_TRUE(cache.first_delivery("late", at(1000)));
  EXPECT_TRUE(cache.first_delivery("early", at(500)));  // the clock stepped back
  EXPECT_FALSE(cache.first_delivery("late", at(500)));
  // "early" expired, though behind "late" in the queue: accepted and recorded again.
  EXPECT_TRUE(cache.first_delivery("early", at(600)));
  EXPECT_FALSE(cache.first_delivery("early", at(605)));
  EXPECT_EQ(cache.size(), 2u);
  // "late" expires, popping the stale entry of "early" which must not forget its new record.
  EXPECT_TRUE(cache.first_delivery("x", at(1020)));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.first_delivery("early", at(1020)));
  EXPECT_FALSE(cache.first_delivery("early", at(1021)));
  EXPECT_FALSE(cache.first_delivery("x", at(1021)));
}

TEST(ReplayCacheTest, WorksWithVerifiedDeliveries) {
  ReplayCache cache;
  const WebhookAuthResult result = verify_standard_at(standard());
  ASSERT_TRUE(result.ok);
  EXPECT_TRUE(cache.first_delivery(result.delivery_id, at(kStandardTime)));
  EXPECT_FALSE(cache.first_delivery(verify_standard_at(standard(), kStandardTime + 60).delivery_id,
                                    at(kStandardTime + 60)));
}

// --- Huge headers: linear, no allocation per item (a quadratic scan of these would take hours) ---

TEST(WebhookVerifyTest, MegabyteStripeHeaderWithManySignatures) {
  std::string header = "t=1700000000";
  const std::string other = ",v1=" + std::string(64, 'b');
  while (header.size() < (1u << 20)) header += other;
  const std::size_t entries = header.size() / other.size();
  header += ",v1=" + std::string(kStripeV1);
  EXPECT_TRUE(verify_stripe_at(header).ok) << entries;

  // A megabyte of ignored items, and of separators alone.
  EXPECT_TRUE(
      verify_stripe_at(std::string(1 << 20, ',') + "t=1700000000,v1=" + std::string(kStripeV1)).ok);
  std::string junk;
  while (junk.size() < (1u << 20)) junk += "x=y,";
  EXPECT_EQ(verify_stripe_at(junk + "t=1700000000").reason,
            "Stripe-Signature header has no v1= signature");
  EXPECT_EQ(verify_stripe_at(header.substr(0, header.size() - 68)).reason,
            "signature does not match");
}

TEST(WebhookVerifyTest, MegabyteStandardHeaderWithManySignatures) {
  std::string header;
  const std::string other = "v1," + base64_encode(std::string(32, 'y')) + " ";
  while (header.size() < (1u << 20)) header += other;
  EXPECT_EQ(verify_standard_at(standard(header)).reason, "signature does not match");
  EXPECT_TRUE(verify_standard_at(standard(header + std::string(kStandardSignature))).ok);
  EXPECT_TRUE(
      verify_standard_at(standard(std::string(1 << 20, ' ') + std::string(kStandardSignature))).ok);
}

TEST(WebhookVerifyTest, MegabyteValuesOfOtherHeaders) {
  const std::string huge(1 << 20, 'a');
  EXPECT_EQ(
      verify(WebhookScheme::kSecret, "secret", {{"X-Webhook-Secret", huge}}, "", at(0)).reason,
      "X-Webhook-Secret does not match");
  EXPECT_FALSE(verify(WebhookScheme::kGitHub, "secret", {{"X-Hub-Signature-256", "sha256=" + huge}},
                      "", at(0))
                   .ok);
  Headers headers = standard();
  headers.set("webhook-timestamp", std::string(1 << 20, '9'));
  EXPECT_EQ(verify_standard_at(headers).reason,
            "webhook-timestamp header is not a unix time in seconds");
  headers.set("webhook-timestamp", std::string(1 << 20, '0') + "1614265330");
  EXPECT_TRUE(verify_standard_at(headers).ok);
}

}  // namespace
}  // namespace photon::core
