// 8-bit RGB images and the preprocessing every backend shares (engine/images.py), with Pillow's
// resampling reproduced to the bit (separable filter, 22-bit fixed-point coefficients), so the
// graph inputs equal Python's.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor.h"

namespace lredit {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // row-major, interleaved

  uint8_t at(int x, int y, int c) const { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
};

enum class Filter { bicubic, lanczos };

inline constexpr int kMinSide = 16;
inline constexpr int64_t kMaxPixels = 178956970;

void check_size(int width, int height);  // Python's images.check_size, with its messages
Image resize(const Image& img, int width, int height, Filter filter);
// resize(img, width, height) cropped to the window at (left, top) of out_w x out_h, computing that window only.
Image resize_window(const Image& img, int width, int height, Filter filter, int left, int top, int out_w, int out_h);
Image crop(const Image& img, int left, int top, int width, int height);
Image resize_short_side(const Image& img, int size, Filter filter = Filter::bicubic);
Image center_crop(const Image& img, int size);
Image square_crop(const Image& img, int size, Filter filter = Filter::bicubic);

// [1, 3, S, S] DINO input; [N, 3, S, S] CLIP input; uint8 [N, H, W, 3] -> [-1, 1] (SD).
Tensor dino_pixels(const Image& img, int size, bool imagenet_norm);
Tensor clip_pixels(const std::vector<Image>& images, int size);
std::vector<float> sd_pixels(const Image& img);  // [3, H, W]
// float [N, 3, H, W] in [-1, 1] -> N images, rounded as diffusers' numpy_to_pil.
std::vector<Image> sd_to_uint8(const Tensor& images);

}  // namespace lredit
