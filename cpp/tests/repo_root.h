// Where the C++ text tests (test_philox, test_sha256, test_tokenizer) find their data: the
// repository root, from the first argument, else $LREDIT_REPO_ROOT, else one folder above
// $LREDIT_TEST_SOURCE (cpp, which the CMake project's ctest sets). Empty when none is given.
#pragma once

#include <cstdlib>
#include <string>

namespace lredit::testing {

inline std::string repo_root(int argc, char** argv) {
  if (argc > 1) return argv[1];
  if (const char* root = std::getenv("LREDIT_REPO_ROOT"); root && *root) return root;
  if (const char* source = std::getenv("LREDIT_TEST_SOURCE"); source && *source) return std::string(source) + "/..";
  return "";
}

}  // namespace lredit::testing
