// The bridge to branch cpp-text's pieces: its CLIP BPE tokenizer, Philox noise and SHA-256 when
// their headers are in src/ (they are once cpp-text has landed); until then an interim with the
// system's OpenSSL for SHA-256 and no tokenizer or noise (callers supply them through EditHooks).
#include "text_bridge.h"

#include "errors.h"

#if __has_include("philox.h") && __has_include("sha256.h") && __has_include("tokenizer.h")
#define LREDIT_HAVE_TEXT 1
#include "philox.h"
#include "sha256.h"
#include "tokenizer.h"
#else
#define LREDIT_HAVE_TEXT 0
#include <openssl/evp.h>

#include <array>
#include <fstream>
#endif

namespace lredit::bridge {

#if LREDIT_HAVE_TEXT

namespace {

class ClipBpe : public Tokenizer {
 public:
  explicit ClipBpe(ClipTokenizer tok) : tok_(std::move(tok)) {}
  Tokens encode(const std::string& text) const override {
    TokenizedText t;
    try {
      t = tok_.encode(text);
    } catch (const std::invalid_argument& e) {
      throw Error(Status::invalid_argument, std::string("prompt: ") + e.what());
    }
    return Tokens{t.ids, static_cast<int>(t.token_count), t.truncated};
  }
  int max_length() const override { return static_cast<int>(tok_.max_length()); }

 private:
  ClipTokenizer tok_;
};

}  // namespace

std::string sha256_file_hex(const std::string& path) {
  try {
    return lredit::sha256_file_hex(path);
  } catch (const std::runtime_error& e) {
    throw Error(Status::io, e.what());
  }
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& folder) {
  try {
    return std::make_unique<ClipBpe>(ClipTokenizer::from_folder(folder));
  } catch (const TokenizerError& e) {
    throw Error(Status::bundle, e.what());
  }
}

std::vector<float> initial_noise(uint64_t seed, int64_t anchor, int64_t size, size_t count) {
  return lredit::initial_noise(seed, static_cast<uint32_t>(anchor), static_cast<uint32_t>(size), count);
}

bool has_noise() { return true; }
bool has_tokenizer() { return true; }

#else

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

#endif

}  // namespace lredit::bridge
