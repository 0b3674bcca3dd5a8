// What the host needs from the C++ CLIP BPE tokenizer, Philox noise and SHA-256, behind one small
// interface (text_bridge.cpp maps their errors to the host's).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lredit::bridge {

std::string sha256_file_hex(const std::string& path);

struct Tokens {
  std::vector<int64_t> ids;  // max_length ids: BOS, body, EOS, padding
  int token_count = 0;       // body tokens before truncation
  bool truncated = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual Tokens encode(const std::string& text) const = 0;
  virtual int max_length() const = 0;
};

// The CLIP BPE tokenizer over a bundle's tokenizer folder (vocab.json, merges.txt, ...).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& folder);

// The engine's initial noise, `count` float32 standard normals for candidate (anchor, size) of
// an edit seeded `seed`; Python's lredit.engine.ops.noise.initial_noise.
std::vector<float> initial_noise(uint64_t seed, int64_t anchor, int64_t size, size_t count);

}  // namespace lredit::bridge
