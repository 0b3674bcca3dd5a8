// Two editors used from two threads at once give the same results as the same edits run serially.
#include <thread>

#include "capi.h"
#include "replay_support.h"
#include "testing.h"

using namespace lredit;
using namespace lredit::testing;

namespace {

struct Outcome {
  lredit_status status = LREDIT_ERROR_INTERNAL;
  std::string error;
  int chosen = -1;
  std::vector<uint8_t> pixels;  // every candidate, then the source
};

struct Job {
  std::string bundle, dump;
  Outcome run() const {
    auto* runner = new ReplayRunner(dump);
    const auto index = runner->index();
    const Image img = recorded_image(dump, index);
    lredit_runner table = replay_table(runner);
    Outcome out;
    lredit_editor* ed = nullptr;
    out.status = lredit_open(bundle.c_str(), &table, 0, &ed);
    if (out.status != LREDIT_OK) {
      out.error = lredit_last_error();
      return out;
    }
    const lredit_options o = recorded_options(index);
    lredit_result* res = nullptr;
    out.status = lredit_edit(ed, img.pixels.data(), img.width, img.height, 0, index["prompt"].get<std::string>().c_str(), &o, &res);
    out.error = lredit_last_error();
    if (res) {
      out.chosen = lredit_result_chosen(res);
      const size_t n = static_cast<size_t>(lredit_result_size(res)) * lredit_result_size(res) * 3;
      for (int k = -2; k < lredit_result_num_candidates(res); ++k) {
        if (k == -1) continue;
        const uint8_t* p = lredit_result_image(res, k);
        out.pixels.insert(out.pixels.end(), p, p + n);
      }
    }
    lredit_result_free(res);
    lredit_close(ed);
    return out;
  }
};

}  // namespace

int main() {
  const auto dumps = replay_dirs();
  if (dumps.empty()) {
    std::cout << "test_threads: skipped: LREDIT_TEST_DATA has no replay_*/ dumps\n";
    return kSkip;
  }
  const std::string bundle = data_dir() + "/bundle";
  const Job a{bundle, dumps[0]}, b{bundle, dumps.size() > 1 ? dumps[1] : dumps[0]};
  const Outcome serial_a = a.run(), serial_b = b.run();
  CHECK_MSG(serial_a.status == LREDIT_OK && serial_b.status == LREDIT_OK, serial_a.error << " / " << serial_b.error);
  Outcome par_a, par_b;
  std::thread ta([&] { par_a = a.run(); }), tb([&] { par_b = b.run(); });
  ta.join();
  tb.join();
  CHECK_MSG(par_a.status == LREDIT_OK && par_b.status == LREDIT_OK, par_a.error << " / " << par_b.error);
  CHECK(par_a.chosen == serial_a.chosen && par_b.chosen == serial_b.chosen);
  CHECK(!serial_a.pixels.empty() && par_a.pixels == serial_a.pixels);
  CHECK(!serial_b.pixels.empty() && par_b.pixels == serial_b.pixels);

  // Errors are per thread: a failure in one thread leaves the other thread's message alone.
  std::string other;
  std::thread tc([&] {
    lredit_open("/nonexistent", nullptr, 0, nullptr);
    other = lredit_last_error();
  });
  tc.join();
  CHECK(!other.empty() && std::string(lredit_last_error()).empty());
  return finish("test_threads");
}
