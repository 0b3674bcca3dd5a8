// The edit as numbered stages (engine/pipeline.py): validate -> 1 saliency (dino) -> 2 anchors ->
// 3 proposals + ROI pool -> 4 RGN argmax -> 5 masks -> 6 text -> 7 VAE encode -> 8 denoise
// (K candidates, one batch, guidance) -> 9 decode (+ paste-back) -> 10 rank.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "anchors.h"
#include "bundle.h"
#include "image.h"
#include "ranking.h"
#include "runner.h"

namespace lredit {

enum class RegionMode { rgn, search };

struct EditConfig {
  int anchors = 9;
  int steps = 50;
  float guidance = 7.5f;
  std::string scheduler = "model";
  uint64_t seed = 0;
  bool paste_back = false;
  RegionMode region_mode = RegionMode::rgn;
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
