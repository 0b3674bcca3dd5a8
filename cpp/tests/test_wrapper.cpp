// The C++ wrapper (lredit.hpp): an error becomes an exception with the status and message; a
// replayed edit through it gives Python's chosen candidate.
#include "capi.h"
#include "lredit/lredit.hpp"
#include "replay_support.h"
#include "testing.h"

using namespace lredit::testing;

int main() {
  const auto dumps = replay_dirs();
  if (dumps.empty()) {
    std::cout << "test_wrapper: skipped: LREDIT_TEST_DATA has no replay_*/ dumps\n";
    return kSkip;
  }
  const std::string bundle = data_dir() + "/bundle";
  try {
    lredit::api::Editor bad("/nonexistent", lredit::testing::replay_table(nullptr));
    CHECK_MSG(false, "opening a missing bundle did not throw");
  } catch (const lredit::api::Error& e) {
    CHECK(e.status() == LREDIT_ERROR_BUNDLE && std::string(e.what()).find("is not an lredit bundle") != std::string::npos);
  }
  auto* runner = new lredit::ReplayRunner(dumps[0]);
  const auto index = runner->index();
  const lredit::Image img = recorded_image(dumps[0], index);
  lredit::api::Editor editor(bundle, replay_table(runner));
  try {
    editor.edit(img.pixels.data(), img.width, img.height, "   ");
    CHECK_MSG(false, "an empty prompt did not throw");
  } catch (const lredit::api::Error& e) {
    CHECK(e.status() == LREDIT_ERROR_INVALID_ARGUMENT && std::string(e.what()).find("prompt is empty") != std::string::npos);
  }
  const lredit::api::Result result =
      editor.edit(img.pixels.data(), img.width, img.height, index["prompt"].get<std::string>(), recorded_options(index));
  CHECK(result.chosen() == index["result"]["chosen"].get<int>());
  CHECK(result.image() == result.image(result.chosen()) && result.size() == index["config"]["working_size"].get<int>());
  CHECK(lredit::api::version() == "0.1.0");
  return finish("test_wrapper");
}
