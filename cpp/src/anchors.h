// Saliency, anchors, proposals, ROI pooling and masks (engine/anchors.py, kernels/roi_pool_ref.py).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor.h"

namespace lredit {

using Box = std::array<double, 4>;  // (x1, y1, x2, y2)
using PixelBox = std::array<int64_t, 4>;
struct Cell {
  int64_t row, col;
};

std::vector<double> cumulative_saliency(const std::vector<float>& attention);
// distinct: the top patches at least `spacing` cells apart (Chebyshev, greedy by saliency, then the
// most salient of the rest when too few are that far apart); else the authors' rule.
std::vector<Cell> select_anchors(const std::vector<double>& values, int rows, int cols, int count, bool distinct, int margin,
                                 int spacing = 0);
// [K][M] boxes in cells (float32 values), clamped to the map.
std::vector<std::vector<Box>> proposal_boxes(const std::vector<Cell>& anchors, const std::vector<int>& half_sizes, int rows,
                                             int cols, bool fix_axes);
PixelBox cell_box_to_pixels(const Box& box, int rows, int cols, int size);

struct PoolSpec {
  int out_size = 8;
  double spatial_scale = 1.0;
  int sampling_ratio = -1;
  bool aligned = false;
  bool anchor_layout = true;  // false: the authors' [M, K] reshape without permute
};

// Raw tokens [H*W, d] -> projected map [c, H, W] (1x1 conv) -> RGN input [K, M*c, l, l].
Tensor pool_proposals(const Tensor& tokens, int rows, int cols, const std::vector<std::vector<Box>>& boxes,
                      const Tensor& weight, const Tensor& bias, const PoolSpec& spec);

// [size, size] float mask, 1 inside the inclusive pixel box (1 = repaint).
std::vector<float> box_mask(const PixelBox& box, int size);

}  // namespace lredit
