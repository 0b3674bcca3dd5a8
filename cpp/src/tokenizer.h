// CLIP byte-level BPE tokenizer over a bundle's tokenizer folder (vocab.json, merges.txt,
// special_tokens_map.json): the same ids as lredit.tokenizer.ClipTokenizer (Python).
//
// Steps, as the Python tokenizer (the `tokenizers` library) does them:
//  1. <|startoftext|> and <|endoftext|> written in the text are special tokens (matched on the
//     raw text, case-sensitively); the pieces between them are handled apart:
//  2. NFC, every run of whitespace (\s) replaced by one space, per-character lowercasing;
//  3. CLIP's pre-tokenising pattern
//     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     (whitespace between matches dropped), each match split again by GPT-2's pattern (the
//     byte-level pre-tokenizer's; it only splits the lowercased special-token strings);
//  4. bytes mapped to GPT-2's byte characters, "</w>" on the last, BPE merges by rank (lowest
//     first, leftmost among equals); a symbol missing from the vocabulary becomes <|endoftext|>;
//  5. ids = <|startoftext|>, the first max_length - 2 tokens, <|endoftext|>, then the pad token up
//     to max_length.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lredit {

// A tokenizer file is missing, unreadable or inconsistent (the Python tokenizer's BundleError).
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TokenizedText {
  std::vector<std::int64_t> ids;  // [max_length]: BOS, tokens, EOS, padding
  std::size_t token_count = 0;    // tokens of the text itself before truncation (BOS/EOS excluded)
  bool truncated = false;
};

class ClipTokenizer {
 public:
  static constexpr const char* kBos = "<|startoftext|>";
  static constexpr const char* kEos = "<|endoftext|>";

  // Throws TokenizerError when a file cannot be read or parsed, a merge names a token that is not
  // in the vocabulary, or the vocabulary lacks BOS, EOS or the pad token; std::invalid_argument
  // when max_length < 2.
  ClipTokenizer(const std::string& vocab_path, const std::string& merges_path, const std::string& pad_token = kEos,
                std::size_t max_length = 77);
  // A Hugging Face tokenizer folder: vocab.json, merges.txt; the pad token from
  // special_tokens_map.json or tokenizer_config.json ("pad_token", a string or {"content": ...}),
  // <|endoftext|> when neither names one.
  static ClipTokenizer from_folder(const std::string& folder, std::size_t max_length = 77);

  // Throws std::invalid_argument when `text` is not valid UTF-8.
  TokenizedText encode(const std::string& text) const;
  // The text's token ids without BOS/EOS, padding or truncation.
  std::vector<std::int64_t> tokenize(const std::string& text) const;

  std::int64_t bos_id() const { return bos_id_; }
  std::int64_t eos_id() const { return eos_id_; }
  std::int64_t pad_id() const { return pad_id_; }
  std::size_t max_length() const { return max_length_; }
  const std::string& pad_token() const { return pad_token_; }

 private:
  void bpe(const std::string& word, std::vector<std::int64_t>& out) const;
  void segment(const std::u32string& text, std::vector<std::int64_t>& out) const;

  std::unordered_map<std::string, std::int64_t> vocab_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<std::uint64_t, std::pair<std::uint32_t, std::int64_t>> merges_;
  std::array<std::string, 256> byte_chars_;  // byte -> its GPT-2 byte character, UTF-8
  std::string pad_token_;
  std::size_t max_length_;
  std::int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0;
};

}  // namespace lredit
