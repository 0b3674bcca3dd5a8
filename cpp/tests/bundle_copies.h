// Throw-away copies of the test bundle with one manifest edit, for bundle-handling tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "npy.h"
#include "testing.h"

namespace lredit::testing {

// A copy of bundle `from` under the temp folder, named after `prefix`, the process and `name`.
inline std::filesystem::path copy_bundle(const std::string& from, const std::string& prefix, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path to = fs::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
  return to;
}

// Replace the first `from` in the file with `to` (a check fails where `from` is absent).
inline void rewrite(const std::filesystem::path& path, const std::string& from, const std::string& to) {
  std::string text = npy::read_file(path.string());
  const size_t at = text.find(from);
  CHECK_MSG(at != std::string::npos, path << " lacks " << from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace lredit::testing
