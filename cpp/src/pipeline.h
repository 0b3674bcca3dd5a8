// The edit as numbered stages (engine/core/pipeline.py): validate -> 1 saliency (dino) -> 2 anchors
// -> 3 proposals + ROI pool -> 4 RGN argmax -> text -> 5-9 the region mode's rows (regions.h):
// masks, VAE encode, denoise (one row per (anchor, size) pair, guidance, chunked to the bundle's
// profile, pruned mid-schedule in search), decode (+ paste-back) -> 10 rank the K winners.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "anchors.h"
#include "bundle.h"
#include "image.h"
#include "ranking.h"
#include "runner.h"

namespace lredit {

enum class RegionMode { rgn, search, learn };

struct EditConfig {
  int anchors = 9;
  int steps = 50;
  float guidance = 7.5f;
  std::string scheduler = "model";
  uint64_t seed = 0;
  bool paste_back = false;
  std::optional<RegionMode> regions;  // none: search without an RGN checkpoint, rgn with one (Python's default)
  bool prune = true;                   // search: successive halving at prune_fractions; false = exact search
  std::vector<double> prune_fractions = {0.2, 0.3, 0.6};
  double prune_keep = 0.5;             // share of each anchor's live sizes kept at a prune
  int max_unet_batch = 0;              // UNet rows per call at most, below the profile (0 = the profile's)
  std::string source_caption;          // T_roi for the objective's L_dir ("" = none)
  bool distinct_anchors = true;
  int max_window = 15;
  int anchor_spacing = 4;
  bool fix_anchor_axes = true;
  bool fix_roi_scale = true;
  bool fix_rgn_layout = true;
  bool dino_imagenet_norm = true;
  double rank_alpha = 2.0;
  double rank_beta = 1.0;
  bool rank_softmax = true;
  int rank_top_t2i = 3;
  std::string prompt_template = "a high quality image of {prompt}.";
  std::string negative_prompt;

  bool do_guidance() const { return guidance > 1.0f; }
};

// What report.json's `regions` holds (modes.py RegionsOutcome).
struct RegionsOutcome {
  RegionMode mode = RegionMode::rgn;
  std::vector<int64_t> chosen_size;          // [K]
  ojson losses;                              // [K][M] loss terms, null where pruned; null in rgn
  ojson phases = ojson::array();             // step, pairs_alive, rows_run (+ the scored totals [K][M])
  int64_t unet_rows = 0;
  std::vector<std::vector<bool>> searched;   // [K][M] pairs inpainted (at least partly)
  std::vector<std::string> notes;
  ojson to_json() const;
};

struct EditResult {
  std::vector<Image> candidates;
  Image source;  // the working image (centre crop at the working size)
  std::vector<Cell> anchors;
  int rows = 0, cols = 0;
  std::vector<std::vector<Box>> boxes_cells;  // [K][M]
  std::vector<int64_t> size_index;            // [K]
  std::vector<PixelBox> boxes_px;             // [K]
  std::vector<std::vector<double>> probabilities;  // [K][M]
  RankScores scores;
  int chosen = 0;
  std::map<std::string, double> timings_ms;  // per stage, plus graph_ms (time inside the runner)
  std::vector<std::string> warnings;
  EditConfig config;
  std::string prompt;
  RegionsOutcome regions;
};

class Pipeline {
 public:
  Pipeline(std::shared_ptr<const Bundle> bundle, std::shared_ptr<Runner> runner);
  EditResult edit(const Image& image, const std::string& prompt, const EditConfig& config);
  const Bundle& bundle() const { return *bundle_; }
  Runner& runner() { return *runner_; }

 private:
  std::shared_ptr<const Bundle> bundle_;
  std::shared_ptr<Runner> runner_;
};

void validate(const EditConfig& config, const std::string& prompt, const Geometry& geometry);

}  // namespace lredit
