// A few assertion helpers for the ctest executables (no test framework: each test is a main).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace lredit::testing {

inline int failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK failed: " #cond "\n";    \
      ++lredit::testing::failures;                                                  \
    }                                                                               \
  } while (0)

#define CHECK_MSG(cond, msg)                                                                         \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      std::ostringstream check_msg_;                                                                 \
      check_msg_ << msg;                                                                             \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK failed: " #cond ": " << check_msg_.str() << "\n"; \
      ++lredit::testing::failures;                                                                   \
    }                                                                                                \
  } while (0)

constexpr int kSkip = 77;  // ctest SKIP_RETURN_CODE

// LREDIT_TEST_DATA: bundle/ (a tiny lr-export bundle) and replay_*/ graph-io dumps.
inline std::string data_dir() {
  const char* d = std::getenv("LREDIT_TEST_DATA");
  return d ? d : "";
}

inline std::vector<std::string> replay_dirs() {
  std::vector<std::string> out;
  const std::string root = data_dir();
  if (root.empty() || !std::filesystem::is_directory(root)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(root))
    if (entry.path().filename().string().rfind("replay_", 0) == 0 && std::filesystem::exists(entry.path() / "index.json"))
      out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline int finish(const char* name) {
  if (failures) {
    std::cerr << name << ": " << failures << " check(s) failed\n";
    return 1;
  }
  std::cout << name << ": OK\n";
  return 0;
}

}  // namespace lredit::testing
