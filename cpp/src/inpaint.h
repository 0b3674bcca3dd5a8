// Stages 5-9 of the edit for a set of (anchor, size) rows (EditPipeline.inpaint): masks, VAE
// encode (chunked to the profile), the row-batched denoise with optional pruning at given steps
// (x0 decoded and handed to the pruner, which says which rows continue), decode (+ paste-back).
#pragma once

#include <functional>
#include <vector>

#include "anchors.h"
#include "image.h"
#include "stages.h"

namespace lredit {

struct Pair {
  int64_t anchor = 0, size = 0;
};

struct Inpainted {
  Image work;                              // the working image, S x S
  std::vector<std::vector<float>> masks;   // [R][S*S] of every row started, 1 = repaint
  std::vector<PixelBox> boxes_px;          // [R]
  std::vector<int64_t> live;               // rows that ran to the end
  std::vector<Image> images;               // decoded results of the live rows
  int64_t unet_rows = 0;
  ojson phases = ojson::array();           // per phase: step, pairs_alive, rows_run
};

// (step, live rows, decoded x0 of the live rows, working image) -> indices into `live` to keep.
using Pruner = std::function<std::vector<int64_t>(int, const std::vector<int64_t>&, const std::vector<Image>&, const Image&)>;

// pair_boxes [R] in feature cells on a side x side grid; hidden [reps, T, D] SD text states.
Inpainted inpaint_rows(Stages& st, const Image& img, const std::vector<Box>& pair_boxes, int side, const std::vector<Pair>& pairs,
                       const Tensor& hidden, const std::vector<int>& prune_steps = {}, const Pruner& prune = nullptr);

// The UNet calls of cfg's schedule (PNDM's PLMS runs steps + 1).
int schedule_length(const Bundle& bundle, const EditConfig& cfg);

}  // namespace lredit
