// The C++ CLIP tokenizer against the golden corpus that the Python tokenizer wrote
// (tests/data/tokenizer_corpus.jsonl, from cpp/tools/gen_tokenizer_corpus.py), over the
// vocabulary in src/lredit/data, plus errors and options.
//   test_tokenizer [REPO_ROOT]       checks; REPO_ROOT: see repo_root.h
//   test_tokenizer --encode FOLDER   a tokenizer folder; reads {"text": ...} lines on stdin, writes
//                                    {"ids", "token_count", "truncated"} or {"error"} lines
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "repo_root.h"
#include "../src/tokenizer.h"

namespace {

int failures = 0;

void fail(const std::string& what) {
  std::fprintf(stderr, "FAIL %s\n", what.c_str());
  ++failures;
}

std::string show(const std::vector<std::int64_t>& ids) {
  std::string out;
  for (std::int64_t id : ids) out += std::to_string(id) + " ";
  return out;
}

// The first 60 bytes of a UTF-8 string, cut at a character boundary.
std::string head_of(const std::string& text) {
  std::size_t n = std::min<std::size_t>(text.size(), 60);
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

void corpus(const lredit::ClipTokenizer& tok, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    fail("cannot open " + path);
    return;
  }
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const std::string text = record.at("text").get<std::string>();
    const auto want = record.at("ids").get<std::vector<std::int64_t>>();
    const lredit::TokenizedText got = tok.encode(text);
    const std::string name = "corpus line " + std::to_string(count + 1) + " " + nlohmann::json(head_of(text)).dump();
    if (got.ids != want) fail(name + ": got " + show(got.ids) + "\n  want " + show(want));
    if (got.token_count != record.at("token_count").get<std::size_t>()) fail(name + ": token_count " + std::to_string(got.token_count));
    if (got.truncated != record.at("truncated").get<bool>()) fail(name + ": truncated flag");
    ++count;
  }
  if (count < 300) fail("expected at least 300 prompts in " + path + ", read " + std::to_string(count));
}

template <typename E, typename F>
void expect_error(const std::string& what, const std::string& needle, F&& call) {
  try {
    call();
  } catch (const E& e) {
    if (std::string(e.what()).find(needle) == std::string::npos) fail(what + ": message '" + e.what() + "' lacks '" + needle + "'");
    return;
  }
  fail(what + ": no error");
}

void options_and_errors(const std::string& vocab, const std::string& merges) {
  const lredit::ClipTokenizer tok(vocab, merges);
  const lredit::TokenizedText cat = tok.encode("a photo of a cat");
  const std::vector<std::int64_t> head(cat.ids.begin(), cat.ids.begin() + 8);
  if (head != std::vector<std::int64_t>{49406, 320, 1125, 539, 320, 2368, 49407, 49407}) fail("known ids: " + show(head));
  if (tok.bos_id() != 49406 || tok.eos_id() != 49407 || tok.pad_id() != 49407) fail("special ids");

  const lredit::ClipTokenizer bang(vocab, merges, "!", 10);  // Stable Diffusion 2's pad token, a short context
  const lredit::TokenizedText padded = bang.encode("a cat");
  if (padded.ids != std::vector<std::int64_t>{49406, 320, 2368, 49407, 0, 0, 0, 0, 0, 0}) fail("pad '!': " + show(padded.ids));
  const lredit::TokenizedText cut = bang.encode("one two three four five six seven eight nine");
  if (cut.ids.size() != 10 || cut.ids.back() != 49407 || !cut.truncated || cut.token_count != 9) fail("truncation at 10: " + show(cut.ids));

  expect_error<std::invalid_argument>("invalid UTF-8", "not valid UTF-8 (byte offset 2)", [&] { tok.encode("ab\xff"); });
  expect_error<std::invalid_argument>("truncated UTF-8", "byte offset 1", [&] { tok.encode("a\xe6\x97"); });
  expect_error<std::invalid_argument>("surrogate in UTF-8", "byte offset 0", [&] { tok.encode("\xed\xa0\x80"); });
  expect_error<std::invalid_argument>("overlong UTF-8", "byte offset 0", [&] { tok.encode("\xc0\xaf"); });
  expect_error<std::invalid_argument>("max_length 1", "max_length 1", [&] { lredit::ClipTokenizer(vocab, merges, lredit::ClipTokenizer::kEos, 1); });
  expect_error<lredit::TokenizerError>("missing vocab", "cannot read CLIP tokenizer files /nonexistent/vocab.json",
                                       [&] { lredit::ClipTokenizer("/nonexistent/vocab.json", merges); });
  expect_error<lredit::TokenizerError>("missing merges", "/nonexistent/merges.txt", [&] { lredit::ClipTokenizer(vocab, "/nonexistent/merges.txt"); });
  expect_error<lredit::TokenizerError>("pad token not in vocab", "lacks the special tokens ['<pad>']",
                                       [&] { lredit::ClipTokenizer(vocab, merges, "<pad>"); });
  expect_error<lredit::TokenizerError>("merges file as vocab", "cannot read CLIP tokenizer files", [&] { lredit::ClipTokenizer(merges, merges); });
}

int encode_lines(const std::string& folder) {
  const lredit::ClipTokenizer tok = lredit::ClipTokenizer::from_folder(folder);
  std::string line;
  while (std::getline(std::cin, line)) {
    nlohmann::json out;
    try {
      const lredit::TokenizedText got = tok.encode(nlohmann::json::parse(line).at("text").get<std::string>());
      out = {{"ids", got.ids}, {"token_count", got.token_count}, {"truncated", got.truncated}};
    } catch (const std::exception& e) {
      out = {{"error", e.what()}};
    }
    std::cout << out.dump() << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::string(argv[1]) == "--encode") return encode_lines(argv[2]);
    const std::string root = lredit::testing::repo_root(argc, argv);
    if (root.empty()) {
      std::fprintf(stderr, "usage: test_tokenizer REPO_ROOT (or set LREDIT_REPO_ROOT or LREDIT_TEST_SOURCE)\n");
      return 2;
    }
    const std::string vocab = root + "/src/lredit/data/clip_vocab.json", merges = root + "/src/lredit/data/clip_merges.txt";
    options_and_errors(vocab, merges);
    corpus(lredit::ClipTokenizer(vocab, merges), root + "/tests/data/tokenizer_corpus.jsonl");
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (failures) return 1;
  std::printf("tokenizer: all checks passed\n");
  return 0;
}
