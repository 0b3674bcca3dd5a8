#include "image.h"

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

uint8_t clip8(int32_t in) {
  if (in >= (1 << kPrecisionBits) << 8) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

Image resample_horizontal(const Image& in, int out_w, int y0, int rows, const Coefficients& c) {
  Image out{out_w, rows, in.channels, std::vector<uint8_t>(static_cast<size_t>(out_w) * rows * in.channels)};
  for (int y = 0; y < rows; ++y)
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
      const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      for (int ch = 0; ch < in.channels; ++ch) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < xmax; ++x) ss += in.at(x + xmin, y + y0, ch) * k[x];
        out.pixels[(static_cast<size_t>(y) * out_w + xx) * in.channels + ch] = clip8(ss);
      }
    }
  return out;
}

Image resample_vertical(const Image& in, int out_h, const Coefficients& c, int shift) {
  Image out{in.width, out_h, in.channels, std::vector<uint8_t>(static_cast<size_t>(in.width) * out_h * in.channels)};
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[yy * 2] - shift, ymax = c.bounds[yy * 2 + 1];
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    for (int x = 0; x < in.width; ++x)
      for (int ch = 0; ch < in.channels; ++ch) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < ymax; ++y) ss += in.at(x, y + ymin, ch) * k[y];
        out.pixels[(static_cast<size_t>(yy) * in.width + x) * in.channels + ch] = clip8(ss);
      }
  }
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

// Pillow's ImagingResampleInner: horizontal pass over the rows the vertical pass reads, then vertical.
Image resize(const Image& img, int width, int height, Filter filter) {
  if (width == img.width && height == img.height) return img;
  const Coefficients ch = coefficients(img.width, width, filter);
  const Coefficients cv = coefficients(img.height, height, filter);
  const bool need_h = width != img.width, need_v = height != img.height;
  const int first = cv.bounds[0];
  const int last = cv.bounds[(height - 1) * 2] + cv.bounds[(height - 1) * 2 + 1];
  if (need_h && need_v) return resample_vertical(resample_horizontal(img, width, first, last - first, ch), height, cv, first);
  if (need_h) return resample_horizontal(img, width, 0, img.height, ch);
  return resample_vertical(img, height, cv, 0);
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

Image resize_short_side(const Image& img, int size, Filter filter) {
  int w, h;
  if (img.width <= img.height) {
    w = size;
    h = std::max(size, static_cast<int>(static_cast<double>(size) * img.height / img.width));
  } else {
    w = std::max(size, static_cast<int>(static_cast<double>(size) * img.width / img.height));
    h = size;
  }
  return resize(img, w, h, filter);
}

Image center_crop(const Image& img, int size) {
  // Python's round() is round-half-even, as nearbyint in the default rounding mode.
  const int left = static_cast<int>(std::nearbyint((img.width - size) / 2.0));
  const int top = static_cast<int>(std::nearbyint((img.height - size) / 2.0));
  return crop(img, left, top, size, size);
}

Image square_crop(const Image& img, int size, Filter filter) { return center_crop(resize_short_side(img, size, filter), size); }

Tensor dino_pixels(const Image& img, int size, bool imagenet_norm) {
  const Image sq = square_crop(img, size);
  Tensor t = Tensor::floats({1, 3, size, size});
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        float v = static_cast<float>(sq.at(x, y, c)) / 255.0f;
        if (imagenet_norm) v = (v - kImagenetMean[c]) / kImagenetStd[c];
        t.f32[(static_cast<size_t>(c) * size + y) * size + x] = v;
      }
  return t;
}

Tensor clip_pixels(const std::vector<Image>& images, int size) {
  Tensor t = Tensor::floats({static_cast<int64_t>(images.size()), 3, size, size});
  const size_t plane = static_cast<size_t>(size) * size;
  for (size_t n = 0; n < images.size(); ++n) {
    const Image sq = square_crop(images[n], size);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
          const float v = static_cast<float>(sq.at(x, y, c)) / 255.0f;
          t.f32[(n * 3 + c) * plane + static_cast<size_t>(y) * size + x] = (v - kClipMean[c]) / kClipStd[c];
        }
  }
  return t;
}

std::vector<float> sd_pixels(const Image& img) {
  std::vector<float> out(static_cast<size_t>(3) * img.width * img.height);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x)
        out[(static_cast<size_t>(c) * img.height + y) * img.width + x] = static_cast<float>(img.at(x, y, c)) / 127.5f - 1.0f;
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
