// The float16 conversions the ONNX Runtime and TensorRT runners use for fp16 graphs: every finite
// half survives half -> float -> half, and float -> half rounds to nearest even.
#include "../runners/half.h"
#include "testing.h"

using namespace lredit;

int main() {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
    if (!nan) CHECK_MSG(float_to_half(half_to_float(static_cast<uint16_t>(h))) == h, "half " << h);
  }
  CHECK(float_to_half(1.0f) == 0x3c00 && float_to_half(-2.0f) == 0xc000 && float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(65520.0f) == 0x7c00);                     // rounds up past the largest half: inf
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);            // a tie rounds to even (down)
  CHECK(float_to_half(1.0f + 3.0f / 2048) == 0x3c02);            // a tie rounds to even (up)
  CHECK(half_to_float(0x0001) == 5.9604645e-08f);                // smallest subnormal
  CHECK(float_to_half(1e-9f) == 0 && half_to_float(0x3555) == 0.33325195f);
  return lredit::testing::finish("test_half");
}
