// Loads libcrypto with dlopen on first use (see crypto_library.hpp for why it is not linked).
#include "webhooks/crypto_library.hpp"

#include <dlfcn.h>

#include <openssl/opensslv.h>

#include <stdexcept>
#include <string>

namespace photon::core {
namespace {

#define PHOTON_STRINGIFY_(x) #x
#define PHOTON_STRINGIFY(x) PHOTON_STRINGIFY_(x)
// The soname of the OpenSSL the headers describe: libcrypto.so.3 for OpenSSL 3.x, whose ABI is
// stable across its minor versions.
constexpr const char* kLibraryName = "libcrypto.so." PHOTON_STRINGIFY(OPENSSL_VERSION_MAJOR);
#undef PHOTON_STRINGIFY
#undef PHOTON_STRINGIFY_

std::string loader_error() {
  const char* reason = ::dlerror();
  return reason != nullptr ? reason : "unknown reason";
}

template <typename Function>
void bind(void* library, Function& slot, const char* symbol) {
  ::dlerror();  // clears a stale error, so the check below sees this lookup's
  void* address = ::dlsym(library, symbol);
  if (address == nullptr) {
    throw std::runtime_error(std::string("libcrypto: ") + kLibraryName + " has no " + symbol +
                             ": " + loader_error());
  }
  slot = reinterpret_cast<Function>(address);
}

CryptoLibrary load() {
  // Never closed: the functions stay valid for the life of the process.
  void* library = ::dlopen(kLibraryName, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    throw std::runtime_error(std::string("libcrypto: cannot load ") + kLibraryName + ": " +
                             loader_error());
  }
  CryptoLibrary functions{};
  bind(library, functions.mac_fetch, "EVP_MAC_fetch");
  bind(library, functions.mac_ctx_new, "EVP_MAC_CTX_new");
  bind(library, functions.mac_ctx_free, "EVP_MAC_CTX_free");
  bind(library, functions.mac_init, "EVP_MAC_init");
  bind(library, functions.mac_update, "EVP_MAC_update");
  bind(library, functions.mac_final, "EVP_MAC_final");
  bind(library, functions.param_utf8_string, "OSSL_PARAM_construct_utf8_string");
  bind(library, functions.param_end, "OSSL_PARAM_construct_end");
  bind(library, functions.encode_base64, "EVP_EncodeBlock");
  bind(library, functions.decode_base64, "EVP_DecodeBlock");
  bind(library, functions.memcmp_constant_time, "CRYPTO_memcmp");
  return functions;
}

}  // namespace

const CryptoLibrary& crypto_library() {
  // A static's initialisation runs once, under a lock; when it throws, the next call runs it again.
  static const CryptoLibrary functions = load();
  return functions;
}

}  // namespace photon::core
