#include "image.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "errors.h"

namespace lredit {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's Resample.c
constexpr float kImagenetMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kImagenetStd[3] = {0.229f, 0.224f, 0.225f};
constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos(double x) {
  if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
  return 0.0;
}

struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds;   // [out, 2]: first input index, count
  std::vector<int32_t> k;    // [out, ksize] fixed point
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc over the whole input range.
Coefficients coefficients(int in_size, int out_size, Filter filter) {
  const double support_base = filter == Filter::bicubic ? 2.0 : 3.0;
  double (*fn)(double) = filter == Filter::bicubic ? bicubic : lanczos;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = support_base * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = fn((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits)) : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

// The coefficients of output positions [start, start + count) only.
Coefficients window(const Coefficients& c, int start, int count) {
  Coefficients w;
  w.ksize = c.ksize;
  w.bounds.assign(c.bounds.begin() + 2 * start, c.bounds.begin() + 2 * (start + count));
  w.k.assign(c.k.begin() + static_cast<size_t>(start) * c.ksize, c.k.begin() + static_cast<size_t>(start + count) * c.ksize);
  return w;
}

uint8_t clip8(int32_t in) {
  if (in >= (1 << kPrecisionBits) << 8) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

// One output line: dst[i] = clip8(half + sum_j k[j] * src[(first + j) * stride + i]) for i < len.
// Integer sums are exact, so any order gives Pillow's bytes; AVX2 where the CPU has it.
__attribute__((target_clones("avx2", "default")))
void accumulate_line(const uint8_t* src, size_t stride, int first, int count, const int32_t* k, size_t len, int32_t* acc,
                     uint8_t* dst) {
  std::fill(acc, acc + len, 1 << (kPrecisionBits - 1));
  for (int j = 0; j < count; ++j) {
    const uint8_t* line = src + static_cast<size_t>(first + j) * stride;
    const int32_t w = k[j];
    for (size_t i = 0; i < len; ++i) acc[i] += line[i] * w;
  }
  for (size_t i = 0; i < len; ++i) dst[i] = clip8(acc[i]);
}

// Rows [y0, y0 + rows) of `in` with columns and rows swapped: [width][rows][channels].
template <size_t CH>
void transpose_into(const Image& in, int y0, int rows, uint8_t* t) {
  const size_t ch = CH ? CH : static_cast<size_t>(in.channels), line = static_cast<size_t>(rows) * ch;
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = &in.pixels[static_cast<size_t>(y + y0) * in.width * ch];
    uint8_t* dst = t + y * ch;
    for (int x = 0; x < in.width; ++x, src += ch, dst += line)
      for (size_t c = 0; c < ch; ++c) dst[c] = src[c];
  }
}

std::vector<uint8_t> transpose_rows(const Image& in, int y0, int rows) {
  std::vector<uint8_t> t(static_cast<size_t>(in.width) * rows * in.channels);
  if (in.channels == 3) transpose_into<3>(in, y0, rows, t.data());
  else transpose_into<0>(in, y0, rows, t.data());
  return t;
}

// Pillow's horizontal pass, computed on the transposed rows so that each output column is one
// contiguous accumulate_line, then transposed back.
Image resample_horizontal(const Image& in, int out_w, int y0, int rows, const Coefficients& c) {
  const size_t ch = static_cast<size_t>(in.channels), line = static_cast<size_t>(rows) * ch;
  const std::vector<uint8_t> t = transpose_rows(in, y0, rows);
  std::vector<uint8_t> cols(static_cast<size_t>(out_w) * line);
  std::vector<int32_t> acc(line);
  for (int xx = 0; xx < out_w; ++xx)
    accumulate_line(t.data(), line, c.bounds[xx * 2], c.bounds[xx * 2 + 1], &c.k[static_cast<size_t>(xx) * c.ksize], line, acc.data(),
                    &cols[xx * line]);
  Image swapped{rows, out_w, in.channels, std::move(cols)};  // [out_w][rows]: transpose it back
  Image out{out_w, rows, in.channels, std::vector<uint8_t>(static_cast<size_t>(out_w) * line)};
  if (ch == 3) transpose_into<3>(swapped, 0, out_w, out.pixels.data());
  else transpose_into<0>(swapped, 0, out_w, out.pixels.data());
  return out;
}

Image resample_vertical(const Image& in, int out_h, const Coefficients& c, int shift) {
  const size_t row = static_cast<size_t>(in.width) * in.channels;
  Image out{in.width, out_h, in.channels, std::vector<uint8_t>(row * out_h)};
  std::vector<int32_t> acc(row);
  for (int yy = 0; yy < out_h; ++yy)
    accumulate_line(in.pixels.data(), row, c.bounds[yy * 2] - shift, c.bounds[yy * 2 + 1], &c.k[static_cast<size_t>(yy) * c.ksize], row,
                    acc.data(), &out.pixels[static_cast<size_t>(yy) * row]);
  return out;
}

}  // namespace

void check_size(int width, int height) {
  const std::string dims = std::to_string(width) + "x" + std::to_string(height);
  if (std::min(width, height) < kMinSide)
    throw Error(Status::invalid_argument, "image <pixels> is " + dims + " pixels; at least " + std::to_string(kMinSide) +
                                              " pixels on each side are needed");
  const int64_t n = static_cast<int64_t>(width) * height;
  if (n > kMaxPixels)
    throw Error(Status::invalid_argument, "image <pixels> is " + dims + " = " + std::to_string(n) + " pixels; the limit is " +
                                              std::to_string(kMaxPixels) + " (downscale it first)");
}

// Pillow's ImagingResampleInner: horizontal pass over the rows the vertical pass reads, then
// vertical. Only the output window [left, left + out_w) x [top, top + out_h) is computed: each
// output pixel depends on its own coefficients only, so it equals resize-then-crop to the bit.
Image resize_window(const Image& img, int width, int height, Filter filter, int left, int top, int out_w, int out_h) {
  const bool need_h = width != img.width, need_v = height != img.height;
  if (!need_h && !need_v) return crop(img, left, top, out_w, out_h);
  if (!need_h) return resample_vertical(crop(img, left, 0, out_w, img.height), out_h, window(coefficients(img.height, height, filter), top, out_h), 0);
  const Coefficients ch = window(coefficients(img.width, width, filter), left, out_w);
  if (!need_v) return resample_horizontal(img, out_w, top, out_h, ch);
  const Coefficients cv = window(coefficients(img.height, height, filter), top, out_h);
  const int first = cv.bounds[0];
  const int last = cv.bounds[(out_h - 1) * 2] + cv.bounds[(out_h - 1) * 2 + 1];
  return resample_vertical(resample_horizontal(img, out_w, first, last - first, ch), out_h, cv, first);
}

Image resize(const Image& img, int width, int height, Filter filter) {
  return resize_window(img, width, height, filter, 0, 0, width, height);
}

Image crop(const Image& img, int left, int top, int width, int height) {
  Image out{width, height, img.channels, std::vector<uint8_t>(static_cast<size_t>(width) * height * img.channels, 0)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const int sx = x + left, sy = y + top;
      if (sx < 0 || sy < 0 || sx >= img.width || sy >= img.height) continue;  // Pillow pads with 0
      for (int c = 0; c < img.channels; ++c)
        out.pixels[(static_cast<size_t>(y) * width + x) * img.channels + c] = img.at(sx, sy, c);
    }
  return out;
}

namespace {

// resize_short_side's target size.
std::pair<int, int> short_side_size(const Image& img, int size) {
  if (img.width <= img.height) return {size, std::max(size, static_cast<int>(static_cast<double>(size) * img.height / img.width))};
  return {std::max(size, static_cast<int>(static_cast<double>(size) * img.width / img.height)), size};
}

// center_crop's offset; Python's round() is round-half-even, as nearbyint in the default mode.
int centre_offset(int length, int size) { return static_cast<int>(std::nearbyint((length - size) / 2.0)); }

}  // namespace

Image resize_short_side(const Image& img, int size, Filter filter) {
  const auto [w, h] = short_side_size(img, size);
  return resize(img, w, h, filter);
}

Image center_crop(const Image& img, int size) {
  return crop(img, centre_offset(img.width, size), centre_offset(img.height, size), size, size);
}

Image square_crop(const Image& img, int size, Filter filter) {
  const auto [w, h] = short_side_size(img, size);
  return resize_window(img, w, h, filter, centre_offset(w, size), centre_offset(h, size), size, size);
}

// Each float a byte maps to depends on the byte and the channel only: the arithmetic Python does
// per pixel (float32, in its order) is done once per value into a table.
using Lut = std::array<std::array<float, 256>, 3>;

Lut unit_lut(const float* mean, const float* std) {
  Lut lut{};
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c][v] = mean ? (x - mean[c]) / std[c] : x;
    }
  return lut;
}

void planar(const Image& img, const Lut& lut, float* out) {
  const size_t plane = static_cast<size_t>(img.width) * img.height;
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) out[c * plane + p] = lut[c][img.pixels[p * 3 + c]];
}

Tensor dino_pixels(const Image& img, int size, bool imagenet_norm) {
  static const Lut normed = unit_lut(kImagenetMean, kImagenetStd), raw = unit_lut(nullptr, nullptr);
  Tensor t = Tensor::floats({1, 3, size, size});
  planar(square_crop(img, size), imagenet_norm ? normed : raw, t.f32.data());
  return t;
}

Tensor clip_pixels(const std::vector<Image>& images, int size) {
  static const Lut lut = unit_lut(kClipMean, kClipStd);
  Tensor t = Tensor::floats({static_cast<int64_t>(images.size()), 3, size, size});
  const size_t per_image = static_cast<size_t>(3) * size * size;
  for (size_t n = 0; n < images.size(); ++n) planar(square_crop(images[n], size), lut, &t.f32[n * per_image]);
  return t;
}

std::vector<float> sd_pixels(const Image& img) {
  Lut lut{};
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<float>(v) / 127.5f - 1.0f;
  std::vector<float> out(static_cast<size_t>(3) * img.width * img.height);
  planar(img, lut, out.data());
  return out;
}

std::vector<Image> sd_to_uint8(const Tensor& images) {
  const int64_t n = images.shape.at(0), h = images.shape.at(2), w = images.shape.at(3);
  std::vector<Image> out;
  for (int64_t i = 0; i < n; ++i) {
    Image img{static_cast<int>(w), static_cast<int>(h), 3, std::vector<uint8_t>(static_cast<size_t>(w * h * 3))};
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < h * w; ++p) {
        float v = images.f32[static_cast<size_t>((i * 3 + c) * h * w + p)] / 2.0f + 0.5f;
        v = std::min(std::max(v, 0.0f), 1.0f);
        img.pixels[static_cast<size_t>(p * 3 + c)] = static_cast<uint8_t>(std::nearbyint(v * 255.0f));
      }
    out.push_back(std::move(img));
  }
  return out;
}

}  // namespace lredit
