// PNG files for the example CLI (libpng): decoded as Pillow's load_image does for PNGs (8-bit,
// 16-bit by the high byte, palette and gray expanded, alpha composited over white).
#pragma once

#include <string>

#include "image.h"

namespace lredit::png {

Image read(const std::string& path);
void write(const std::string& path, const Image& image);  // atomic: temp file + rename

}  // namespace lredit::png
