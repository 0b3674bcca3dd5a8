// Replay parity: the whole C++ edit driven by the Python runtime's recorded graph I/O. Every
// graph input the host produces equals Python's (<= 1e-5); anchors, boxes, sizes, scores, the
// chosen index and the candidate images are equal; report.json's `regions` equals Python's:
// mode, chosen sizes, searched pairs, UNet rows, notes, every phase (step, pairs alive, rows run),
// the pairs scored at each prune and at the end (so the same pairs pruned), every loss <= 1e-5.
#include <cmath>
#include <map>

#include "bundle.h"
#include "replay_support.h"
#include "testing.h"

using namespace lredit;
using namespace lredit::testing;

namespace {

constexpr double kTolerance = 1e-5;

// Two JSON values equal, numbers within kTolerance; `where` names the first difference.
bool close_json(const ojson& got, const ojson& want, std::string& where, const std::string& path) {
  if (got.is_number() && want.is_number()) {
    const double d = std::fabs(got.get<double>() - want.get<double>());
    if (d <= kTolerance) return true;
    where = path + ": " + got.dump() + " vs Python's " + want.dump();
    return false;
  }
  if (got.type() != want.type() || got.size() != want.size()) {
    where = path + ": " + got.dump().substr(0, 200) + " vs Python's " + want.dump().substr(0, 200);
    return false;
  }
  if (got.is_array()) {
    for (size_t i = 0; i < got.size(); ++i)
      if (!close_json(got[i], want[i], where, path + "[" + std::to_string(i) + "]")) return false;
    return true;
  }
  if (got.is_object()) {
    for (const auto& [key, value] : want.items())
      if (!got.contains(key) || !close_json(got[key], value, where, path + "." + key)) {
        if (where.empty()) where = path + "." + key + " missing";
        return false;
      }
    return true;
  }
  if (got == want) return true;
  where = path + ": " + got.dump() + " vs Python's " + want.dump();
  return false;
}

void check_regions(const std::string& dump, const EditResult& r, const ojson& want) {
  std::string where;
  CHECK_MSG(close_json(r.regions.to_json(), want, where, "regions"), dump << ": " << where);
  int64_t scored = 0;
  for (const auto& row : want.value("losses", ojson::array()))
    for (const auto& v : row) scored += !v.is_null();
  std::cout << dump << ": regions " << want["mode"].get<std::string>() << ", " << want["phases"].size() << " phases, " << scored
            << " pairs scored to the end, " << want["unet_rows"] << " UNet rows: equal\n";
}

void check_dump(const std::string& dump, const std::shared_ptr<const Bundle>& bundle) {
  auto runner = std::make_shared<ReplayRunner>(dump);
  const auto& index = runner->index();
  const auto& want = index.at("result");
  Pipeline pipeline(bundle, runner);
  const EditResult r = pipeline.edit(recorded_image(dump, index), index.at("prompt").get<std::string>(), recorded_config(index));

  std::map<std::string, double> worst;
  CHECK_MSG(runner->comparisons().size() > 0, dump << ": no graph input was compared");
  for (const auto& c : runner->comparisons()) {
    CHECK_MSG(c.shape_equal, dump << ": " << c.graph << "[" << c.call << "]." << c.input << " has another shape or dtype");
    CHECK_MSG(c.max_abs_diff <= kTolerance, dump << ": " << c.graph << "[" << c.call << "]." << c.input << " differs by " << c.max_abs_diff);
    std::string key = c.graph + "." + c.input;
    worst[key] = std::max(worst[key], c.max_abs_diff);
  }
  CHECK_MSG(runner->comparisons().size() == [&] {
    size_t n = 0;
    for (const auto& call : runner->calls()) n += call.inputs.size();
    return n;
  }(), dump << ": the host made another number of graph calls than Python");
  for (const auto& [key, diff] : worst) std::cout << "  " << key << ": max |C++ - Python| = " << diff << "\n";

  const size_t k = r.anchors.size();
  CHECK(k == want.at("anchors").size());
  for (size_t a = 0; a < k && a < want.at("anchors").size(); ++a) {
    CHECK_MSG(r.anchors[a].row == want["anchors"][a][0].get<int64_t>() && r.anchors[a].col == want["anchors"][a][1].get<int64_t>(),
              "anchor " << a);
    CHECK_MSG(r.size_index[a] == want["size_index"][a].get<int64_t>(), "size index " << a);
    for (size_t m = 0; m < r.boxes_cells[a].size(); ++m)
      for (int i = 0; i < 4; ++i) CHECK(r.boxes_cells[a][m][i] == want["boxes_cells"][a][m][i].get<double>());
    for (int i = 0; i < 4; ++i) CHECK_MSG(r.boxes_px[a][i] == want["boxes_px"][a][i].get<int64_t>(), "pixel box " << a);
    CHECK_MSG(std::fabs(r.scores.t2i[a] - want["t2i"][a].get<double>()) <= 1e-9, "t2i " << a);
    CHECK_MSG(std::fabs(r.scores.i2i[a] - want["i2i"][a].get<double>()) <= 1e-9, "i2i " << a);
    CHECK_MSG(std::fabs(r.scores.score[a] - want["score"][a].get<double>()) <= 1e-9, "score " << a);
  }
  CHECK_MSG(r.chosen == want.at("chosen").get<int>(), "chosen " << r.chosen << " vs Python's " << want["chosen"]);
  const Tensor py = npy::read(dump + "/" + want.at("candidates").get<std::string>());
  size_t differing = 0, at = 0;
  for (const Image& img : r.candidates)
    for (uint8_t v : img.pixels) differing += at < py.i64.size() && py.i64[at++] != v;
  CHECK_MSG(at == py.i64.size() && differing == 0, dump << ": " << differing << " candidate pixel values differ from Python's");
  CHECK_MSG(want.contains("regions") && want["regions"].is_object(), dump << ": the recording has no regions (re-record it)");
  if (want.contains("regions") && want["regions"].is_object()) check_regions(dump, r, want["regions"]);
  std::cout << dump << ": K=" << k << ", chosen " << r.chosen << ", " << runner->comparisons().size() << " graph inputs compared\n";
}

}  // namespace

int main() {
  const std::vector<std::string> dumps = replay_dirs();
  if (dumps.empty()) {
    std::cout << "test_replay: skipped: LREDIT_TEST_DATA has no replay_*/ dumps (tests/test_cpp_host.py makes them)\n";
    return kSkip;
  }
  auto bundle = std::make_shared<const Bundle>(open_bundle(data_dir() + "/bundle", true));
  for (const auto& dump : dumps) {
    try {
      check_dump(dump, bundle);
    } catch (const std::exception& e) {
      std::cerr << dump << ": " << e.what() << "\n";
      ++failures;
    }
  }
  return finish("test_replay");
}
