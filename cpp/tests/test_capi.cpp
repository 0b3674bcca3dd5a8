// The C ABI's failure paths: each gives an error code and a one-line message from
// lredit_last_error, and nothing crashes (the sanitizer build runs this too). Then one good edit
// through a C runner table gives Python's chosen candidate.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "capi.h"
#include "replay_support.h"
#include "bundle_copies.h"
#include "testing.h"

using namespace lredit;
using namespace lredit::testing;
namespace fs = std::filesystem;

namespace {

bool contains(const char* text, const std::string& part) { return text && std::string(text).find(part) != std::string::npos; }

int fail_run(void*, const char*, const lredit_tensor_view*, size_t, lredit_outputs*, char* message, size_t size) {
  std::snprintf(message, size, "device lost");
  return 3;
}

int wrong_shape_run(void*, const char*, const lredit_tensor_view*, size_t, lredit_outputs* outputs, char*, size_t) {
  const int64_t shape[2] = {1, 5};
  const float data[5] = {0, 0, 0, 0, 0};
  lredit_outputs_put(outputs, "features", LREDIT_DTYPE_F32, 2, shape, data);
  lredit_outputs_put(outputs, "saliency", LREDIT_DTYPE_F32, 2, shape, data);
  return 0;
}

fs::path copy_bundle(const std::string& from, const std::string& name) { return testing::copy_bundle(from, "lredit_capi", name); }

lredit_runner dummy_table() { return lredit_runner{nullptr, fail_run, nullptr}; }

void open_errors(const std::string& bundle) {
  lredit_editor* ed = reinterpret_cast<lredit_editor*>(0x1);
  lredit_runner table = dummy_table();
  CHECK(lredit_open("/nonexistent/bundle", &table, 1, &ed) == LREDIT_ERROR_BUNDLE && ed == nullptr);
  CHECK_MSG(contains(lredit_last_error(), "/nonexistent/bundle is not an lredit bundle (no manifest.json); create one with lr-export --out /nonexistent/bundle"),
            lredit_last_error());
  CHECK(lredit_open(nullptr, &table, 1, &ed) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "bundle_dir is NULL"));
  CHECK(lredit_open(bundle.c_str(), nullptr, 1, &ed) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "runner is NULL"));
  CHECK(lredit_open(bundle.c_str(), &table, 1, nullptr) == LREDIT_ERROR_INVALID_ARGUMENT);
  lredit_runner no_run{nullptr, nullptr, nullptr};
  CHECK(lredit_open(bundle.c_str(), &no_run, 1, &ed) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "no run function"));

  const fs::path corrupt = copy_bundle(bundle, "corrupt");
  {
    std::fstream f(corrupt / "onnx" / "rgn.onnx", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  CHECK(lredit_open(corrupt.c_str(), &table, 1, &ed) == LREDIT_ERROR_BUNDLE);
  CHECK_MSG(contains(lredit_last_error(), "bundle file corrupt (sha256 mismatch): " + (corrupt / "onnx" / "rgn.onnx").string() +
                                              "; re-run lr-export --out " + corrupt.string()),
            lredit_last_error());
  fs::remove(corrupt / "onnx" / "rgn.onnx");
  CHECK(lredit_open(corrupt.c_str(), &table, 1, &ed) == LREDIT_ERROR_BUNDLE && contains(lredit_last_error(), "bundle file missing: "));
  fs::remove_all(corrupt);

  const fs::path newer = copy_bundle(bundle, "newer");
  rewrite(newer / "manifest.json", "\"format_version\": 1", "\"format_version\": 7");
  CHECK(lredit_open(newer.c_str(), &table, 1, &ed) == LREDIT_ERROR_BUNDLE);
  CHECK_MSG(contains(lredit_last_error(), "bundle " + newer.string() + " has format version 7; this lredit reads up to 1: upgrade lredit"),
            lredit_last_error());
  rewrite(newer / "manifest.json", "\"format_version\": 7", "\"format\": \"other\"");
  CHECK(lredit_open(newer.c_str(), &table, 1, &ed) == LREDIT_ERROR_BUNDLE && contains(lredit_last_error(), "has format version None"));
  fs::remove_all(newer);

  const fs::path outside = copy_bundle(bundle, "outside");
  rewrite(outside / "manifest.json", "\"rgn_projection.npz\": \"", "\"../../etc/passwd\": \"");
  CHECK(lredit_open(outside.c_str(), &table, 0, &ed) == LREDIT_ERROR_BUNDLE);
  CHECK_MSG(contains(lredit_last_error(), "the manifest names '../../etc/passwd', which is not a path inside the bundle; refusing to load it"),
            lredit_last_error());
  fs::remove_all(outside);
  const fs::path linked = copy_bundle(bundle, "linked");
  fs::remove(linked / "rgn_projection.npz");
  fs::create_symlink("/etc/hostname", linked / "rgn_projection.npz");
  CHECK(lredit_open(linked.c_str(), &table, 0, &ed) == LREDIT_ERROR_BUNDLE);
  CHECK_MSG(contains(lredit_last_error(), "'rgn_projection.npz' resolves to /etc/hostname, outside the bundle (a symlink?)"), lredit_last_error());
  fs::remove_all(linked);
  const fs::path malformed = copy_bundle(bundle, "malformed");
  rewrite(malformed / "manifest.json", "\"pipeline\":", "\"pipe\":");
  CHECK(lredit_open(malformed.c_str(), &table, 0, &ed) == LREDIT_ERROR_BUNDLE);
  CHECK_MSG(contains(lredit_last_error(), "malformed manifest ("), lredit_last_error());
  fs::remove_all(malformed);
  const fs::path blend = copy_bundle(bundle, "blend");
  rewrite(blend / "manifest.json", "\"editor\": \"inpaint\"", "\"editor\": \"sd-blend\"");
  CHECK(lredit_open(blend.c_str(), &table, 0, &ed) == LREDIT_ERROR_BUNDLE);
  CHECK_MSG(contains(lredit_last_error(), "exported for the 'sd-blend' editor (a text-to-image UNet); this host runs inpainting bundles only"),
            lredit_last_error());
  fs::remove_all(blend);

  const fs::path incomplete = copy_bundle(bundle, "incomplete");
  rewrite(incomplete / "manifest.json", "\"complete\": true", "\"complete\": false");
  CHECK(lredit_open(incomplete.c_str(), &table, 1, &ed) == LREDIT_ERROR_BUNDLE);
  CHECK_MSG(contains(lredit_last_error(), "is incomplete (an export was interrupted or failed parity)"), lredit_last_error());
  fs::remove_all(incomplete);
}

void edit_errors(const std::string& bundle) {
  lredit_editor* ed = nullptr;
  lredit_runner table = dummy_table();
  CHECK(lredit_open(bundle.c_str(), &table, 0, &ed) == LREDIT_OK && ed != nullptr);
  std::vector<uint8_t> rgb(64 * 64 * 3, 128);
  lredit_result* res = reinterpret_cast<lredit_result*>(0x1);
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "", nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT && res == nullptr);
  CHECK_MSG(contains(lredit_last_error(), "prompt is empty"), lredit_last_error());
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "  \t", nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, nullptr, nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "prompt is NULL"));
  CHECK(lredit_edit(ed, nullptr, 64, 64, 0, "a cat", nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "rgb"));
  CHECK(lredit_edit(nullptr, rgb.data(), 64, 64, 0, "a cat", nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "editor is NULL"));
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", nullptr, nullptr) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK(lredit_edit(ed, rgb.data(), 8, 64, 0, "a cat", nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK_MSG(contains(lredit_last_error(), "is 8x64 pixels; at least 16 pixels on each side are needed"), lredit_last_error());
  CHECK(lredit_edit(ed, rgb.data(), 100000, 100000, 0, "a cat", nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK_MSG(contains(lredit_last_error(), "the limit is 178956970"), lredit_last_error());
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 10, "a cat", nullptr, &res) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "stride"));
  lredit_options o;
  lredit_options_default(&o);
  o.anchors = 99;
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", &o, &res) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK_MSG(contains(lredit_last_error(), "anchors=99: this bundle's graphs take at most 16 candidates"), lredit_last_error());
  lredit_options_default(&o);
  o.region_mode = LREDIT_REGION_LEARN;  // Python-only: refused before any graph runs, saying what to do instead
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", &o, &res) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK_MSG(contains(lredit_last_error(), "region mode 'learn' is not in the C++ host") && contains(lredit_last_error(), "lr-train-rgn"),
            lredit_last_error());
  lredit_options_default(&o);
  const int32_t bad_mode = 7;  // as a C caller could store it
  std::memcpy(&o.region_mode, &bad_mode, sizeof(bad_mode));
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", &o, &res) == LREDIT_ERROR_INVALID_ARGUMENT &&
        contains(lredit_last_error(), "not an lredit_region_mode value"));
  lredit_options_default(&o);
  o.prune_keep = 0.0;
  o.num_prune_fractions = 2;
  o.prune_fractions[0] = 0.6;
  o.prune_fractions[1] = 0.3;
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", &o, &res) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK_MSG(contains(lredit_last_error(), "prune_fractions (expected increasing") && contains(lredit_last_error(), "prune_keep=0"),
            lredit_last_error());
  lredit_options_default(&o);
  o.num_prune_fractions = 9;
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", &o, &res) == LREDIT_ERROR_INVALID_ARGUMENT &&
        contains(lredit_last_error(), "num_prune_fractions"));
  lredit_options_default(&o);
  o.struct_size = 3;
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", &o, &res) == LREDIT_ERROR_INVALID_ARGUMENT && contains(lredit_last_error(), "struct_size"));
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", nullptr, &res) == LREDIT_ERROR_RUNNER);
  CHECK_MSG(contains(lredit_last_error(), "runner failed on graph dino: device lost"), lredit_last_error());
  lredit_close(ed);

  lredit_runner bad_shape{nullptr, wrong_shape_run, nullptr};
  CHECK(lredit_open(bundle.c_str(), &bad_shape, 0, &ed) == LREDIT_OK);
  CHECK(lredit_edit(ed, rgb.data(), 64, 64, 0, "a cat", nullptr, &res) == LREDIT_ERROR_RUNNER);
  CHECK_MSG(contains(lredit_last_error(), "patch tokens"), lredit_last_error());
  lredit_close(ed);
  CHECK(lredit_outputs_put(nullptr, "x", LREDIT_DTYPE_F32, 0, nullptr, nullptr) == LREDIT_ERROR_INVALID_ARGUMENT);
  CHECK(lredit_result_image(nullptr, 0) == nullptr && lredit_result_chosen(nullptr) == -1);
  lredit_result_free(nullptr);
  lredit_close(nullptr);
}

void good_edit(const std::string& bundle, const std::string& dump) {
  auto* runner = new ReplayRunner(dump);
  const auto index = runner->index();
  const Image img = recorded_image(dump, index);
  lredit_runner table = replay_table(runner);
  lredit_editor* ed = nullptr;
  CHECK(lredit_open(bundle.c_str(), &table, 1, &ed) == LREDIT_OK);
  if (!ed) return;
  const lredit_options o = recorded_options(index);
  lredit_result* res = nullptr;
  const lredit_status st = lredit_edit(ed, img.pixels.data(), img.width, img.height, 0, index["prompt"].get<std::string>().c_str(), &o, &res);
  CHECK_MSG(st == LREDIT_OK, lredit_last_error());
  if (res) {
    CHECK(lredit_result_chosen(res) == index["result"]["chosen"].get<int>());
    CHECK(lredit_result_num_candidates(res) == o.anchors);
    CHECK(lredit_result_image(res, -1) == lredit_result_image(res, lredit_result_chosen(res)));
    CHECK(lredit_result_image(res, 99) == nullptr);
    const auto report = nlohmann::json::parse(lredit_result_report_json(res));
    CHECK(report["chosen"].get<int>() == index["result"]["chosen"].get<int>());
    CHECK(std::string(lredit_last_error()).empty());
  }
  lredit_result_free(res);
  lredit_close(ed);
}

}  // namespace

int main() {
  if (data_dir().empty() || !fs::exists(data_dir() + "/bundle/manifest.json")) {
    std::cout << "test_capi: skipped: LREDIT_TEST_DATA has no bundle/ (tests/test_cpp_host.py makes it)\n";
    return kSkip;
  }
  const std::string bundle = data_dir() + "/bundle";
  open_errors(bundle);
  edit_errors(bundle);
  const auto dumps = replay_dirs();
  if (!dumps.empty()) good_edit(bundle, dumps[0]);
  CHECK(std::string(lredit_version()) == "0.1.0");
  return finish("test_capi");
}
