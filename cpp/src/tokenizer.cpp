#include "tokenizer.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <queue>
#include <sstream>

#include <nlohmann/json.hpp>

#include "unicode.h"

namespace lredit {
namespace {

using unicode::is_letter;
using unicode::is_number;
using unicode::is_space;

const char* const kContractions[] = {"s", "t", "re", "ve", "m", "ll", "d"};

bool starts_with(const std::u32string& s, std::size_t at, const char* ascii) {
  for (std::size_t k = 0; ascii[k] != '\0'; ++k) {
    if (at + k >= s.size() || s[at + k] != static_cast<char32_t>(ascii[k])) return false;
  }
  return true;
}

std::size_t ascii_length(const char* s) { return std::char_traits<char>::length(s); }

// Length of the contraction ('s 't 're 've 'm 'll 'd) at `at`, or 0.
std::size_t contraction_at(const std::u32string& s, std::size_t at) {
  if (s[at] != U'\'') return 0;
  for (const char* c : kContractions) {
    if (starts_with(s, at + 1, c)) return 1 + ascii_length(c);
  }
  return 0;
}

bool is_other(char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }

// End of the run of characters with `pred` from `at`.
template <typename Pred>
std::size_t run_end(const std::u32string& s, std::size_t at, Pred pred) {
  while (at < s.size() && pred(s[at])) ++at;
  return at;
}

// CLIP's pattern: <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
std::vector<std::u32string> clip_split(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t end = i;
    if (is_space(s[i])) {
      ++i;
      continue;
    } else if (starts_with(s, i, ClipTokenizer::kBos)) {
      end = i + ascii_length(ClipTokenizer::kBos);
    } else if (starts_with(s, i, ClipTokenizer::kEos)) {
      end = i + ascii_length(ClipTokenizer::kEos);
    } else if (std::size_t n = contraction_at(s, i)) {
      end = i + n;
    } else if (is_letter(s[i])) {
      end = run_end(s, i, is_letter);
    } else if (is_number(s[i])) {
      end = i + 1;
    } else {
      end = run_end(s, i, is_other);
    }
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

// GPT-2's pattern as the byte-level pre-tokenizer applies it, on a piece without whitespace:
// 's|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+
std::vector<std::u32string> gpt2_split(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t end = i;
    if (std::size_t n = contraction_at(s, i)) {
      end = i + n;
    } else if (is_letter(s[i])) {
      end = run_end(s, i, is_letter);
    } else if (is_number(s[i])) {
      end = run_end(s, i, is_number);
    } else {
      end = run_end(s, i, is_other);
    }
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for U+0100 onwards.
std::array<std::string, 256> byte_characters() {
  std::array<char32_t, 256> map{};
  std::array<bool, 256> printable{};
  for (int b = 0; b < 256; ++b) printable[b] = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) map[b] = printable[b] ? static_cast<char32_t>(b) : next++;
  std::array<std::string, 256> out;
  for (int b = 0; b < 256; ++b) out[b] = unicode::encode_utf8(std::u32string(1, map[b]));
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return buf.str();
}

// Lines as Python's str.splitlines() cuts a merges file (\n, \r\n, \r).
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' || c == '\r') {
      lines.push_back(line);
      line.clear();
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      line.push_back(c);
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

bool is_file(const std::string& path) { return std::ifstream(path).good(); }

std::string pad_token_of(const std::string& folder) {
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    const std::string path = folder + "/" + name;
    if (!is_file(path)) continue;
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(read_file(path));
    } catch (const std::exception& e) {
      throw TokenizerError("cannot read " + path + ": " + e.what());
    }
    if (!doc.is_object() || !doc.contains("pad_token")) continue;
    nlohmann::json pad = doc["pad_token"];
    if (pad.is_object() && pad.contains("content")) pad = pad["content"];
    if (pad.is_string()) return pad.get<std::string>();
  }
  return ClipTokenizer::kEos;
}

}  // namespace

ClipTokenizer::ClipTokenizer(const std::string& vocab_path, const std::string& merges_path, const std::string& pad_token,
                             std::size_t max_length)
    : byte_chars_(byte_characters()), pad_token_(pad_token), max_length_(max_length) {
  if (max_length < 2) throw std::invalid_argument("max_length " + std::to_string(max_length) + " leaves no room for BOS and EOS");
  std::vector<std::string> lines;
  try {
    const nlohmann::json vocab = nlohmann::json::parse(read_file(vocab_path));
    if (!vocab.is_object()) throw std::runtime_error("vocab.json is not a JSON object");
    for (const auto& item : vocab.items()) vocab_.emplace(item.key(), item.value().get<std::int64_t>());
    lines = split_lines(read_file(merges_path));
  } catch (const std::exception& e) {
    throw TokenizerError("cannot read CLIP tokenizer files " + vocab_path + ", " + merges_path + ": " + e.what());
  }
  std::vector<std::string> missing;
  for (const std::string& token : {std::string(kBos), std::string(kEos), pad_token}) {
    if (!vocab_.count(token)) missing.push_back("'" + token + "'");
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    throw TokenizerError("CLIP vocabulary " + vocab_path + " lacks the special tokens [" + list + "]");
  }
  bos_id_ = vocab_.at(kBos);
  eos_id_ = vocab_.at(kEos);
  pad_id_ = vocab_.at(pad_token);
  std::uint32_t rank = 0;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const std::vector<std::string> words = split_words(line);
    const std::string where = merges_path + " line " + std::to_string(n + 1);
    if (words.size() != 2) throw TokenizerError(where + ": expected two tokens, found " + std::to_string(words.size()));
    for (const std::string& token : {words[0], words[1], words[0] + words[1]}) {
      if (!vocab_.count(token)) throw TokenizerError(where + ": token '" + token + "' is not in the vocabulary");
    }
    const auto key = (static_cast<std::uint64_t>(vocab_.at(words[0])) << 32) | static_cast<std::uint32_t>(vocab_.at(words[1]));
    merges_[key] = {rank++, vocab_.at(words[0] + words[1])};  // a repeated pair: the later line wins, as in Python
  }
}

ClipTokenizer ClipTokenizer::from_folder(const std::string& folder, std::size_t max_length) {
  return ClipTokenizer(folder + "/vocab.json", folder + "/merges.txt", pad_token_of(folder), max_length);
}

void ClipTokenizer::bpe(const std::string& word, std::vector<std::int64_t>& out) const {
  struct Symbol {
    std::int64_t id;
    long prev, next;
    bool alive;
  };
  struct Merge {
    std::uint32_t rank;
    long pos;
    std::int64_t id;
    bool operator>(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  for (std::size_t i = 0; i < word.size(); ++i) {
    std::string piece = byte_chars_[static_cast<unsigned char>(word[i])];
    if (i + 1 == word.size()) piece += "</w>";
    const auto it = vocab_.find(piece);
    const long at = static_cast<long>(i);
    sym.push_back({it != vocab_.end() ? it->second : eos_id_, at - 1, i + 1 < word.size() ? at + 1 : -1, true});
  }
  auto pair_merge = [&](long left) -> const std::pair<std::uint32_t, std::int64_t>* {
    const long right = sym[left].next;
    if (right < 0) return nullptr;
    const auto key = (static_cast<std::uint64_t>(sym[left].id) << 32) | static_cast<std::uint32_t>(sym[right].id);
    const auto it = merges_.find(key);
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::priority_queue<Merge, std::vector<Merge>, std::greater<Merge>> queue;
  for (long i = 0; i + 1 < static_cast<long>(sym.size()); ++i) {
    if (const auto* m = pair_merge(i)) queue.push({m->first, i, m->second});
  }
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    if (!sym[top.pos].alive) continue;
    const auto* current = pair_merge(top.pos);
    if (current == nullptr || current->second != top.id) continue;  // the pair changed since it was queued
    const long right = sym[top.pos].next;
    sym[top.pos].id = top.id;
    sym[top.pos].next = sym[right].next;
    sym[right].alive = false;
    if (sym[right].next >= 0) sym[sym[right].next].prev = top.pos;
    if (sym[top.pos].prev >= 0) {
      if (const auto* m = pair_merge(sym[top.pos].prev)) queue.push({m->first, sym[top.pos].prev, m->second});
    }
    if (const auto* m = pair_merge(top.pos)) queue.push({m->first, top.pos, m->second});
  }
  for (long i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

void ClipTokenizer::segment(const std::u32string& text, std::vector<std::int64_t>& out) const {
  const std::u32string composed = unicode::nfc(text);
  std::u32string spaced;
  spaced.reserve(composed.size());
  for (char32_t c : composed) {  // every run of \s becomes one space
    if (!is_space(c)) {
      spaced.push_back(c);
    } else if (spaced.empty() || spaced.back() != U' ') {
      spaced.push_back(U' ');
    }
  }
  for (const std::u32string& piece : clip_split(unicode::lowercase(spaced))) {
    for (const std::u32string& part : gpt2_split(piece)) bpe(unicode::encode_utf8(part), out);
  }
}

std::vector<std::int64_t> ClipTokenizer::tokenize(const std::string& text) const {
  const std::u32string cps = unicode::decode_utf8(text);
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < cps.size();) {
    const bool bos = starts_with(cps, i, kBos);
    if (bos || starts_with(cps, i, kEos)) {
      segment(cps.substr(start, i - start), out);
      out.push_back(bos ? bos_id_ : eos_id_);
      i += ascii_length(bos ? kBos : kEos);
      start = i;
    } else {
      ++i;
    }
  }
  segment(cps.substr(start), out);
  return out;
}

TokenizedText ClipTokenizer::encode(const std::string& text) const {
  const std::vector<std::int64_t> tokens = tokenize(text);
  const std::size_t room = max_length_ - 2;
  TokenizedText result;
  result.token_count = tokens.size();
  result.truncated = tokens.size() > room;
  result.ids.reserve(max_length_);
  result.ids.push_back(bos_id_);
  result.ids.insert(result.ids.end(), tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(std::min(room, tokens.size())));
  result.ids.push_back(eos_id_);
  result.ids.resize(max_length_, pad_id_);
  return result;
}

}  // namespace lredit
