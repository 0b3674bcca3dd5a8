// SHA-256 against the NIST FIPS 180-4 examples, chunked feeding, and files.
//   test_sha256 [REPO_ROOT]        run the checks (they need no data; the argument is accepted
//                                  like the other test programs'); exit 0 when all pass
//   test_sha256 --files FILE...    print "<hex>  <file>" per file (tests/test_cpp_text.py compares with hashlib)
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "../src/sha256.h"

namespace {

int failures = 0;

void expect_eq(const std::string& got, const std::string& want, const std::string& what) {
  if (got != want) {
    std::fprintf(stderr, "FAIL %s: got %s, want %s\n", what.c_str(), got.c_str(), want.c_str());
    ++failures;
  }
}

void nist_vectors() {
  expect_eq(lredit::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty");
  expect_eq(lredit::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  expect_eq(lredit::sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "448-bit message");
  const std::string long_msg =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  expect_eq(lredit::sha256_hex(long_msg.data(), long_msg.size()),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1", "896-bit message");
  const std::string million(1000000, 'a');
  expect_eq(lredit::sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "one million a");
}

// Every split of a message into pieces of a fixed size gives the one-shot digest, across the
// 55/56/64-byte padding boundaries.
void chunked() {
  std::string msg;
  for (int i = 0; i < 300; ++i) msg.push_back(static_cast<char>((i * 37 + 11) & 0xff));
  for (std::size_t length : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 300u}) {
    const std::string whole = lredit::sha256_hex(msg.data(), length);
    for (std::size_t piece : {1u, 3u, 63u, 64u, 65u}) {
      lredit::Sha256 h;
      for (std::size_t at = 0; at < length; at += piece) h.update(msg.data() + at, std::min(piece, length - at));
      expect_eq(h.hexdigest(), whole, "length " + std::to_string(length) + " in pieces of " + std::to_string(piece));
    }
  }
}

void spent_object_and_missing_file() {
  lredit::Sha256 h;
  h.digest();
  bool threw = false;
  try {
    h.update("x", 1);
  } catch (const std::logic_error&) {
    threw = true;
  }
  if (!threw) {
    std::fprintf(stderr, "FAIL update after digest did not throw\n");
    ++failures;
  }
  threw = false;
  try {
    lredit::sha256_file_hex("/nonexistent/lredit/file.onnx");
  } catch (const std::runtime_error& e) {
    threw = std::strstr(e.what(), "/nonexistent/lredit/file.onnx") != nullptr;
  }
  if (!threw) {
    std::fprintf(stderr, "FAIL a missing file did not throw an error naming it\n");
    ++failures;
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 1 && std::string(argv[1]) == "--files") {
      for (int i = 2; i < argc; ++i) std::printf("%s  %s\n", lredit::sha256_file_hex(argv[i]).c_str(), argv[i]);
      return 0;
    }
    nist_vectors();
    chunked();
    spent_object_and_missing_file();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL %s\n", e.what());
    return 1;
  }
  if (failures) return 1;
  std::printf("sha256: all checks passed\n");
  return 0;
}
