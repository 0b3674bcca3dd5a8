// Region modes (engine/regions/modes.py): how each anchor's box size is chosen.
// - rgn: the RGN's argmax, one pass of K inpaints.
// - search: every (anchor, size) pair inpainted as one row batch; each anchor keeps the size with
//   the lowest loss L (objective.h) on CLIP of the decoded pairs. With pruning (default),
//   successive halving: at the pruning fractions of the schedule the x0 predictions are decoded
//   and scored and the best prune_keep share of each anchor's live sizes continues. Noise is keyed
//   by (seed, anchor, size), so a surviving pair's image equals the same pair unpruned.
// - learn: Python only (it trains the RGN per image); refused with a message.
#pragma once

#include <string>
#include <vector>

#include "inpaint.h"
#include "objective.h"
#include "pipeline.h"

namespace lredit {

std::vector<Pair> all_pairs(int64_t k, int64_t m);  // anchor-major
// UNet-call indices at which to prune: round(f * total) kept inside 1..total-1, unique, sorted.
std::vector<int> prune_steps(int total_steps, const std::vector<double>& fractions);
// Indices (into `pairs`) of each anchor's best ceil(share x live) sizes, at least one; ties go to
// the smaller size index. Returned in ascending order.
std::vector<int64_t> keep_best(const std::vector<Pair>& pairs, const std::vector<double>& losses, double share);

// The mode this edit runs: config.regions, or by default search without an RGN checkpoint and
// rgn with one (rgn also where search cannot run, with a warning). learn, or an explicit mode
// that cannot run, is an Error(invalid_argument) saying what to do.
RegionMode resolve_mode(const Bundle& bundle, const EditConfig& cfg, std::vector<std::string>& warnings);
const char* mode_name(RegionMode mode);

// The K winners, one per anchor, ready for ranking.
struct ChosenRegions {
  Image work;
  std::vector<Image> images;
  std::vector<PixelBox> boxes_px;
  RegionsOutcome outcome;
};

struct RegionJob {
  Stages& stages;
  const Image& image;
  const std::vector<std::vector<Box>>& boxes;  // [K][M] proposals in cells
  int side;
  const Tensor& hidden;
  const std::string& prompt;
  const std::string& source_caption;
};

ChosenRegions one_pass(const RegionJob& job, const std::vector<int64_t>& sizes);
ChosenRegions search(const RegionJob& job);

}  // namespace lredit
