// The host's one door to the C++ CLIP tokenizer, Philox noise and SHA-256 (tokenizer.h, philox.h,
// sha256.h): their errors become the host's, with its status codes.
#include "text_bridge.h"

#include "errors.h"
#include "philox.h"
#include "sha256.h"
#include "tokenizer.h"

namespace lredit::bridge {
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

}  // namespace lredit::bridge
