// What the C ABI's opaque handles hold, for the library's own C++ users (tests, the nanobind
// module, the benchmark) that need more than the C functions give.
#pragma once

#include <memory>
#include <string>

#include "pipeline.h"

struct lredit_editor {
  std::shared_ptr<const lredit::Bundle> bundle;
  std::shared_ptr<lredit::Runner> runner;
  std::unique_ptr<lredit::Pipeline> pipeline;
};

struct lredit_result {
  lredit::EditResult result;
  std::string report;
};

namespace lredit {

// Open a bundle with a C++ runner (the C ABI's lredit_open wraps a callback table in one).
lredit_status open_editor(const char* bundle_dir, std::shared_ptr<Runner> runner, int verify, lredit_editor** editor);
EditConfig config_from_options(const lredit_options& options);
void set_last_error(const std::string& message);

}  // namespace lredit
