// The engine's noise: Random123's known answers for Philox4x32-10, and initial_noise against the
// golden values that numpy wrote (tests/data/noise_golden.txt, from cpp/tools/gen_noise_golden.py).
//   test_philox [REPO_ROOT]                        checks; REPO_ROOT: see repo_root.h
//   test_philox --dump SEED ANCHOR SIZE COUNT OUT  write COUNT float32 (little-endian) to OUT
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "repo_root.h"
#include "../src/philox.h"

namespace {

int failures = 0;

void fail(const std::string& what) {
  std::fprintf(stderr, "FAIL %s\n", what.c_str());
  ++failures;
}

std::string hex4(const lredit::PhiloxCounter& c) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x %08x %08x %08x", c[0], c[1], c[2], c[3]);
  return buf;
}

void known_answers() {
  struct Case {
    lredit::PhiloxCounter counter;
    lredit::PhiloxKey key;
    const char* want;
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, "6627e8d5 e169c58d bc57ac4c 9b00dbd8"},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, "408f276d 41c83b0e a20bc7c6 6d5451fd"},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, "d16cfe09 94fdcceb 5001e420 24126ea1"},
  };
  for (const Case& c : cases) {
    const std::string got = hex4(lredit::philox4x32(c.counter, c.key));
    if (got != c.want) fail("philox4x32-10 known answer: got " + got + ", want " + c.want);
  }
}

std::uint32_t bits_of(float f) {
  std::uint32_t b = 0;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

void golden(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    fail("cannot open " + path);
    return;
  }
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    unsigned long long seed = 0, anchor = 0, size = 0;
    fields >> seed >> anchor >> size;
    std::vector<std::uint32_t> want;
    std::string word;
    while (fields >> word) want.push_back(static_cast<std::uint32_t>(std::stoul(word, nullptr, 16)));
    const std::vector<float> got = lredit::initial_noise(seed, static_cast<std::uint32_t>(anchor), static_cast<std::uint32_t>(size), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (bits_of(got[i]) != want[i]) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "noise (%llu, %llu, %llu)[%zu]: got %08x (%.9g), want %08x", seed, anchor, size, i,
                      bits_of(got[i]), static_cast<double>(got[i]), want[i]);
        fail(buf);
      }
    }
    ++cases;
  }
  if (cases < 6) fail("expected at least 6 golden cases in " + path + ", read " + std::to_string(cases));
}

// A prefix of a longer draw is the shorter draw; the count does not change earlier values.
void prefix_stable() {
  const std::vector<float> long_draw = lredit::initial_noise(7, 1, 2, 103);
  const std::vector<float> short_draw = lredit::initial_noise(7, 1, 2, 10);
  for (std::size_t i = 0; i < short_draw.size(); ++i) {
    if (bits_of(long_draw[i]) != bits_of(short_draw[i])) fail("prefix differs at " + std::to_string(i));
  }
}

int dump(char** argv) {
  const std::uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  const auto anchor = static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10));
  const auto size = static_cast<std::uint32_t>(std::strtoul(argv[4], nullptr, 10));
  const std::size_t count = std::strtoull(argv[5], nullptr, 10);
  const std::vector<float> z = lredit::initial_noise(seed, anchor, size, count);
  std::ofstream out(argv[6], std::ios::binary);
  out.write(reinterpret_cast<const char*>(z.data()), static_cast<std::streamsize>(z.size() * sizeof(float)));
  return out ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 7 && std::string(argv[1]) == "--dump") return dump(argv);
    const std::string root = lredit::testing::repo_root(argc, argv);
    if (root.empty()) {
      std::fprintf(stderr, "usage: test_philox REPO_ROOT (or set LREDIT_REPO_ROOT or LREDIT_TEST_SOURCE)\n");
      return 2;
    }
    known_answers();
    golden(root + "/tests/data/noise_golden.txt");
    prefix_stable();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (failures) return 1;
  std::printf("philox: all checks passed\n");
  return 0;
}
