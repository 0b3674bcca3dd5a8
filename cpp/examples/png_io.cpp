#include "png_io.h"

#include <png.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "errors.h"

namespace lredit::png {
namespace {

// Pillow's alpha_composite of a pixel over opaque white (AlphaComposite.c, 7 precision bits).
uint8_t over_white(uint32_t value, uint32_t alpha) {
  if (alpha == 0) return 255;
  constexpr uint32_t bits = 7;
  const uint32_t outa255 = alpha * 255 + 255 * (255 - alpha);
  const uint32_t coef1 = alpha * 255 * 255 * (1u << bits) / outa255;
  const uint32_t coef2 = 255 * (1u << bits) - coef1;
  uint32_t tmp = value * coef1 + 255 * coef2 + (0x80u << bits);
  tmp = ((tmp >> 8) + tmp) >> 8;
  return static_cast<uint8_t>(tmp >> bits);
}

struct File {
  std::FILE* f;
  ~File() {
    if (f) std::fclose(f);
  }
};

}  // namespace

Image read(const std::string& path) {
  File file{std::fopen(path.c_str(), "rb")};
  if (!file.f) throw Error(Status::io, "image not found: " + path);
  unsigned char sig[8];
  if (std::fread(sig, 1, 8, file.f) != 8 || png_sig_cmp(sig, 0, 8) != 0) throw Error(Status::invalid_argument, "not a PNG file: " + path);
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) throw Error(Status::internal, "libpng could not start");
  Image img;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(Status::invalid_argument, "cannot decode image " + path + " (is the file truncated or corrupt?)");
  }
  png_init_io(png, file.f);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  const int width = static_cast<int>(png_get_image_width(png, info)), height = static_cast<int>(png_get_image_height(png, info));
  check_size(width, height);
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_gray_to_rgb(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  std::vector<uint8_t> raw(static_cast<size_t>(width) * height * channels);
  for (int y = 0; y < height; ++y) rows.push_back(raw.data() + static_cast<size_t>(y) * width * channels);
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  img = Image{width, height, 3, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  for (size_t p = 0; p < static_cast<size_t>(width) * height; ++p)
    for (int c = 0; c < 3; ++c)
      img.pixels[p * 3 + c] = channels == 4 ? over_white(raw[p * 4 + c], raw[p * 4 + 3]) : raw[p * channels + c];
  return img;
}

void write(const std::string& path, const Image& image) {
  const std::filesystem::path target(path);
  const std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".tmp")).string();
  png_image out{};
  out.version = PNG_IMAGE_VERSION;
  out.width = static_cast<png_uint_32>(image.width);
  out.height = static_cast<png_uint_32>(image.height);
  out.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&out, tmp.c_str(), 0, image.pixels.data(), 0, nullptr))
    throw Error(Status::io, "cannot write " + tmp + ": " + out.message);
  std::error_code ec;
  std::filesystem::rename(tmp, target, ec);
  if (ec) throw Error(Status::io, "cannot rename " + tmp + " to " + path + ": " + ec.message());
}

}  // namespace lredit::png
