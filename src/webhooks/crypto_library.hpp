// The few libcrypto (OpenSSL 3) functions photond uses, loaded from the library on first use.
//
// Why not link it: most daemons check no webhook signature, and a linked libcrypto costs every
// daemon about 1.4 MB of resident memory at start (the loader reads its relocation tables and
// writes its method tables), a third of the idle-memory goal. Loaded on first use, that cost goes
// to the daemons that authenticate webhooks (they load it at start, so that a missing library
// stops the start). The pointers are typed by OpenSSL's own declarations, so a mismatch is a
// compile error.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace photon::core {

struct CryptoLibrary {
  decltype(&EVP_MAC_fetch) mac_fetch;
  decltype(&EVP_MAC_CTX_new) mac_ctx_new;
  decltype(&EVP_MAC_CTX_free) mac_ctx_free;
  decltype(&EVP_MAC_init) mac_init;
  decltype(&EVP_MAC_update) mac_update;
  decltype(&EVP_MAC_final) mac_final;
  decltype(&OSSL_PARAM_construct_utf8_string) param_utf8_string;
  decltype(&OSSL_PARAM_construct_end) param_end;
  decltype(&EVP_EncodeBlock) encode_base64;
  decltype(&EVP_DecodeBlock) decode_base64;
  decltype(&CRYPTO_memcmp) memcmp_constant_time;
};

// libcrypto, loaded (once, thread-safely) by the first call. Throws std::runtime_error naming the
// library and the loader's reason when it cannot be loaded or lacks a function; a later call
// tries again.
const CryptoLibrary& crypto_library();

}  // namespace photon::core
