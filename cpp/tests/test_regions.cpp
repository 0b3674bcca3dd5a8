// Region modes' small parts, against modes.py's rules: pairs, prune steps (Python's round, half to
// even), keep_best (ceil share, ties to the smaller size), the default mode from the bundle (search
// without an RGN checkpoint, rgn with one, rgn with a warning where clip_vision lacks `tokens`),
// and learn refused with what to do instead.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "errors.h"
#include "npy.h"
#include "regions.h"
#include "bundle_copies.h"
#include "testing.h"

using namespace lredit;
using namespace lredit::testing;
namespace fs = std::filesystem;

namespace {

void pruning_rules() {
  const std::vector<Pair> pairs = all_pairs(2, 3);
  CHECK(pairs.size() == 6 && pairs[4].anchor == 1 && pairs[4].size == 1);
  CHECK((prune_steps(5, {0.2, 0.3, 0.6}) == std::vector<int>{1, 2, 3}));  // round(1.5) = 2
  CHECK((prune_steps(4, {0.2, 0.3, 0.6}) == std::vector<int>{1, 2}));     // 0.8 and 1.2 both give 1
  CHECK((prune_steps(5, {0.5}) == std::vector<int>{2}));                  // round(2.5) = 2: half to even
  CHECK((prune_steps(10, {0.05, 0.99}) == std::vector<int>{1, 9}));       // kept inside 1..total-1
  CHECK(prune_steps(1, {0.5}).empty());
  // anchor 0: sizes 0..2 with losses 3, 1, 1 -> ceil(0.5 x 3) = 2 kept: sizes 1 and 2 (tie: smaller first)
  // anchor 1: one live size -> kept
  const std::vector<Pair> live = {{0, 0}, {0, 1}, {0, 2}, {1, 2}};
  CHECK((keep_best(live, {3.0, 1.0, 1.0, 9.0}, 0.5) == std::vector<int64_t>{1, 2, 3}));
  CHECK((keep_best(live, {1.0, 1.0, 1.0, 9.0}, 0.34) == std::vector<int64_t>{0, 1, 3}));  // ceil(1.02) = 2: sizes 0, 1
  CHECK((keep_best(live, {2.0, 1.0, 3.0, 9.0}, 0.1) == std::vector<int64_t>{1, 3}));      // at least one
}

fs::path copy_bundle(const std::string& from, const std::string& name) { return testing::copy_bundle(from, "lredit_regions", name); }

std::string refusal(const Bundle& b, const EditConfig& cfg) {
  std::vector<std::string> warnings;
  try {
    resolve_mode(b, cfg, warnings);
  } catch (const Error& e) {
    CHECK(e.status() == Status::invalid_argument);
    return e.what();
  }
  return "";
}

void default_mode(const std::string& bundle_dir) {
  const Bundle seeded = open_bundle(bundle_dir, false);
  CHECK(!seeded.has_rgn_checkpoint && seeded.clip_vision_tokens);
  CHECK(seeded.batch_limits.count("unet") && seeded.batch_limits.at("unet") == 2 * seeded.geometry.max_candidates);
  EditConfig cfg;
  std::vector<std::string> warnings;
  CHECK(resolve_mode(seeded, cfg, warnings) == RegionMode::search && warnings.empty());
  cfg.regions = RegionMode::rgn;
  CHECK(resolve_mode(seeded, cfg, warnings) == RegionMode::rgn);
  cfg.regions = RegionMode::learn;
  const std::string learn = refusal(seeded, cfg);
  CHECK_MSG(learn.find("region mode 'learn' is not in the C++ host") != std::string::npos && learn.find("lr-train-rgn") != std::string::npos,
            learn);

  const fs::path trained = copy_bundle(bundle_dir, "trained");
  rewrite(trained / "manifest.json", "\"rgn\": \"seeded:0\"", "\"rgn\": \"/models/rgn.safetensors\"");
  const Bundle with_checkpoint = open_bundle(trained.string(), false);
  CHECK(with_checkpoint.has_rgn_checkpoint);
  CHECK(resolve_mode(with_checkpoint, EditConfig{}, warnings) == RegionMode::rgn && warnings.empty());
  fs::remove_all(trained);

  const fs::path old = copy_bundle(bundle_dir, "old");
  rewrite(old / "manifest.json", "\"name\": \"tokens\"", "\"name\": \"hidden\"");
  const Bundle no_tokens = open_bundle(old.string(), false);
  CHECK(!no_tokens.clip_vision_tokens);
  CHECK(resolve_mode(no_tokens, EditConfig{}, warnings) == RegionMode::rgn && warnings.size() == 1);
  CHECK_MSG(!warnings.empty() && warnings[0].rfind("regions: one-pass rgn with a seeded RGN, because search cannot run: the clip_vision "
                                                   "graph has no 'tokens' output", 0) == 0,
            (warnings.empty() ? "" : warnings[0]));
  cfg.regions = RegionMode::search;
  const std::string explicit_search = refusal(no_tokens, cfg);
  CHECK_MSG(explicit_search.rfind("--regions search cannot run: the clip_vision graph has no 'tokens' output", 0) == 0, explicit_search);
  fs::remove_all(old);
}

}  // namespace

int main() {
  pruning_rules();
  const std::string bundle = data_dir() + "/bundle";
  if (data_dir().empty() || !fs::exists(bundle + "/manifest.json")) {
    std::cout << "test_regions: bundle checks skipped: LREDIT_TEST_DATA has no bundle/\n";
    return failures ? finish("test_regions") : kSkip;
  }
  try {
    default_mode(bundle);
  } catch (const std::exception& e) {
    std::cerr << "test_regions: " << e.what() << "\n";
    ++failures;
  }
  return finish("test_regions");
}
