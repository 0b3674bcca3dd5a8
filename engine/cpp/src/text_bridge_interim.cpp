// Interim bridge until branch cpp-text's sha256/tokenizer/philox land: SHA-256 from the system's
// OpenSSL (libssl-dev); no tokenizer and no noise (the caller supplies them, see EditHooks).
#include <openssl/evp.h>

#include <array>
#include <fstream>

#include "errors.h"
#include "text_bridge.h"

namespace lredit::bridge {

std::string sha256_file_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Status::io, "cannot read " + path);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw Error(Status::internal, "SHA-256 init failed");
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(in.gcount()));
  }
  std::array<unsigned char, 32> digest{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest.data(), &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string&) { return nullptr; }

std::vector<float> initial_noise(uint64_t, int64_t, int64_t, size_t) {
  throw Error(Status::internal, "this build has no Philox noise yet (branch cpp-text); supply the noise through EditHooks");
}

bool has_noise() { return false; }
bool has_tokenizer() { return false; }

}  // namespace lredit::bridge
