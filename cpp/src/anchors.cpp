#include "anchors.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "errors.h"

namespace lredit {
namespace {

// numpy's pairwise summation (add.reduce on contiguous float64), so totals equal Python's.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

std::vector<size_t> stable_argsort(const std::vector<double>& keys) {
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  return order;
}

// [bins, size] summed bilinear weights of one box along one axis (roi_pool_ref._axis_weights).
std::vector<double> axis_weights(double start, double length, int bins, int64_t grid, int size) {
  std::vector<double> w(static_cast<size_t>(bins) * size, 0.0);
  const double bin_len = length / bins;
  const double g = std::max<double>(static_cast<double>(grid), 1.0);
  for (int b = 0; b < bins; ++b)
    for (int64_t i = 0; i < grid; ++i) {
      double pos = start + b * bin_len + (i + 0.5) * bin_len / g;
      if (pos < -1.0 || pos > size) continue;
      pos = std::max(pos, 0.0);
      int64_t low = static_cast<int64_t>(std::floor(pos)), high;
      if (low >= size - 1) {
        low = high = size - 1;
        pos = static_cast<double>(low);
      } else {
        high = low + 1;
      }
      const double frac = pos - low;
      w[static_cast<size_t>(b) * size + low] += 1.0 - frac;
      w[static_cast<size_t>(b) * size + high] += frac;
    }
  return w;
}

}  // namespace

std::vector<double> cumulative_saliency(const std::vector<float>& attention) {
  std::vector<double> att(attention.begin(), attention.end());
  const double total = pairwise_sum(att.data(), att.size());
  if (!std::isfinite(total) || total <= 0)
    throw Error(Status::numerical, "DINO saliency sums to " + std::to_string(total) + "; expected a positive finite attention mass");
  const std::vector<size_t> order = stable_argsort(att);
  std::vector<double> values(att.size());
  double running = 0.0;
  for (size_t idx : order) {
    running += att[idx] / total;
    values[idx] = running;
  }
  return values;
}

std::vector<Cell> select_anchors(const std::vector<double>& values, int rows, int cols, int count, bool distinct, int margin,
                                 int spacing) {
  const int n = rows * cols;
  if (static_cast<int>(values.size()) != n)
    throw Error(Status::runner, "saliency has " + std::to_string(values.size()) + " values for a " + std::to_string(rows) + "x" +
                                    std::to_string(cols) + " grid");
  if (count > n)
    throw Error(Status::invalid_argument, "anchors=" + std::to_string(count) + " requested but the " + std::to_string(rows) + "x" +
                                              std::to_string(cols) + " DINO feature map has only " + std::to_string(n) +
                                              " patches; use --anchors " + std::to_string(n) + " or fewer");
  std::vector<double> negated(values.size());
  for (size_t i = 0; i < values.size(); ++i) negated[i] = -values[i];
  const std::vector<size_t> ranked = stable_argsort(negated);
  std::vector<size_t> picks;
  if (spacing < 0)
    throw Error(Status::invalid_argument, "anchor_spacing=" + std::to_string(spacing) + " must be >= 0 (cells between anchors; 0 = plain top-K)");
  if (distinct && spacing <= 1) {
    picks.assign(ranked.begin(), ranked.begin() + count);
  } else if (distinct) {  // engine/anchors.py spaced_picks
    std::vector<bool> taken(ranked.size(), false);
    for (size_t i = 0; i < ranked.size() && static_cast<int>(picks.size()) < count; ++i) {
      const int64_t r = static_cast<int64_t>(ranked[i]) / cols, c = static_cast<int64_t>(ranked[i]) % cols;
      bool far = true;
      for (size_t p : picks) {
        const int64_t dr = std::llabs(static_cast<int64_t>(p) / cols - r), dc = std::llabs(static_cast<int64_t>(p) % cols - c);
        far = far && std::max(dr, dc) >= spacing;
      }
      if (far) picks.push_back(ranked[i]), taken[i] = true;
    }
    for (size_t i = 0; i < ranked.size() && static_cast<int>(picks.size()) < count; ++i)
      if (!taken[i]) picks.push_back(ranked[i]);
  } else {
    for (size_t p : ranked) {
      const int64_t r = static_cast<int64_t>(p) / cols, c = static_cast<int64_t>(p) % cols;
      if (r >= margin && r <= rows - 1 - margin && c >= margin && c <= cols - 1 - margin) picks.push_back(p);
      if (static_cast<int>(picks.size()) == count) break;
    }
    for (size_t i = 0; static_cast<int>(picks.size()) < count; ++i) picks.push_back(ranked[i]);
  }
  std::vector<Cell> out;
  for (size_t p : picks) out.push_back({static_cast<int64_t>(p) / cols, static_cast<int64_t>(p) % cols});
  return out;
}

std::vector<std::vector<Box>> proposal_boxes(const std::vector<Cell>& anchors, const std::vector<int>& half_sizes, int rows,
                                             int cols, bool fix_axes) {
  std::vector<std::vector<Box>> boxes;
  for (const Cell& a : anchors) {
    const int64_t cx = fix_axes ? a.col : a.row, cy = fix_axes ? a.row : a.col;
    std::vector<Box> per;
    for (int s : half_sizes) {
      auto clampv = [](int64_t v, int64_t hi) { return static_cast<double>(std::min(std::max<int64_t>(v, 0), hi)); };
      per.push_back({clampv(cx - s, cols - 1), clampv(cy - s, rows - 1), clampv(cx + s, cols - 1), clampv(cy + s, rows - 1)});
    }
    boxes.push_back(per);
  }
  return boxes;
}

PixelBox cell_box_to_pixels(const Box& box, int rows, int cols, int size) {
  const double sx = (size - 1) / static_cast<double>(std::max(cols - 1, 1));
  const double sy = (size - 1) / static_cast<double>(std::max(rows - 1, 1));
  const double scale[4] = {sx, sy, sx, sy};
  PixelBox out{};
  for (int i = 0; i < 4; ++i) {
    // np.round(v, 6) = rint(v * 1e6) / 1e6, then ceil (float noise must not add a pixel).
    const double rounded = std::nearbyint(box[i] * scale[i] * 1e6) / 1e6;
    out[i] = static_cast<int64_t>(std::ceil(rounded));
  }
  return out;
}

Tensor pool_proposals(const Tensor& tokens, int rows, int cols, const std::vector<std::vector<Box>>& boxes,
                      const Tensor& weight, const Tensor& bias, const PoolSpec& spec) {
  const int64_t hw = static_cast<int64_t>(rows) * cols, d = weight.shape.at(1), c = weight.shape.at(0);
  if (tokens.numel() != static_cast<size_t>(hw * d))
    throw Error(Status::runner, "DINO features " + tokens.describe() + " do not match the projection's " + std::to_string(d) + " channels");
  // The 1x1 projection in float32 (as project_tokens), accumulated in double.
  std::vector<double> map(static_cast<size_t>(c * hw));
  for (int64_t p = 0; p < hw; ++p)
    for (int64_t o = 0; o < c; ++o) {
      double acc = 0.0;
      for (int64_t i = 0; i < d; ++i) acc += static_cast<double>(tokens.f32[p * d + i]) * weight.f32[o * d + i];
      map[o * hw + p] = static_cast<double>(static_cast<float>(static_cast<float>(acc) + bias.f32[o]));
    }
  const int64_t k_count = static_cast<int64_t>(boxes.size()), m_count = static_cast<int64_t>(boxes.at(0).size());
  const int l = spec.out_size;
  Tensor out = Tensor::floats({k_count, m_count * c, l, l});
  const double offset = spec.aligned ? 0.5 : 0.0;
  for (int64_t k = 0; k < k_count; ++k)
    for (int64_t m = 0; m < m_count; ++m) {
      const Box& b = boxes[k][m];
      const double x1 = b[0] * spec.spatial_scale - offset, y1 = b[1] * spec.spatial_scale - offset;
      double roi_w = b[2] * spec.spatial_scale - offset - x1, roi_h = b[3] * spec.spatial_scale - offset - y1;
      if (!spec.aligned) roi_w = std::max(roi_w, 1.0), roi_h = std::max(roi_h, 1.0);
      const int64_t gh = spec.sampling_ratio > 0 ? spec.sampling_ratio : static_cast<int64_t>(std::ceil(roi_h / l));
      const int64_t gw = spec.sampling_ratio > 0 ? spec.sampling_ratio : static_cast<int64_t>(std::ceil(roi_w / l));
      const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
      const std::vector<double> ay = axis_weights(y1, roi_h, l, gh, rows), ax = axis_weights(x1, roi_w, l, gw, cols);
      int xlo = cols, xhi = -1;  // the columns with a non-zero weight in any bin
      for (size_t i = 0; i < ax.size(); ++i)
        if (ax[i] != 0.0) xlo = std::min(xlo, static_cast<int>(i % cols)), xhi = std::max(xhi, static_cast<int>(i % cols));
      // RGN input position: anchor layout -> [k, m*c + ch]; authors' -> flat (m, k) reshaped.
      const int64_t flat = spec.anchor_layout ? k * m_count + m : m * k_count + k;
      for (int64_t ch = 0; ch < c; ++ch) {
        const double* f = &map[ch * hw];
        float* dst = &out.f32[static_cast<size_t>((flat * c + ch) * l * l)];
        for (int p = 0; p < l; ++p) {
          std::vector<double> row(cols, 0.0);  // Ay[p] @ F, over the columns Ax can weigh
          for (int y = 0; y < rows; ++y) {
            const double wy = ay[static_cast<size_t>(p) * rows + y];
            if (wy != 0.0)
              for (int x = xlo; x <= xhi; ++x) row[x] += wy * f[y * cols + x];
          }
          for (int q = 0; q < l; ++q) {
            double acc = 0.0;
            for (int x = xlo; x <= xhi; ++x) acc += row[x] * ax[static_cast<size_t>(q) * cols + x];
            dst[p * l + q] = static_cast<float>(acc / count);
          }
        }
      }
    }
  return out;
}

std::vector<float> box_mask(const PixelBox& box, int size) {
  std::vector<float> mask(static_cast<size_t>(size) * size, 0.0f);
  for (int64_t y = std::max<int64_t>(box[1], 0); y <= std::min<int64_t>(box[3], size - 1); ++y)
    for (int64_t x = std::max<int64_t>(box[0], 0); x <= std::min<int64_t>(box[2], size - 1); ++x) mask[y * size + x] = 1.0f;
  return mask;
}

}  // namespace lredit

