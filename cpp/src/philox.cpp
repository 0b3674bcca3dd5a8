#include "philox.h"

#include <cfloat>
#include <cmath>

// Bit-exactness with numpy needs IEEE double arithmetic rounded at every operation.
#if defined(__FAST_MATH__)
#error "philox.cpp must not be compiled with -ffast-math: the noise would differ from numpy's"
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "philox.cpp needs FLT_EVAL_METHOD == 0 (no excess precision, e.g. SSE2 rather than x87)"
#endif

namespace lredit {
namespace {

constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
constexpr int kRounds = 10;
constexpr double kLn2 = 0x1.62e42fefa39efp-1;
constexpr double kSqrt1_2 = 0x1.6a09e667f3bcdp-1;
constexpr double kHalfPi2m30 = 0x1.921fb54442d18p-30;  // (pi/2) / 2^30
constexpr int kLogTerms = 13;
constexpr int kTrigTerms = 12;

// A product rounded to double before anything is added to it: compilers may fuse a*b + c into
// one FMA (-ffp-contract=fast, the default of GCC's GNU modes and of aarch64), numpy never does.
inline double mul(double a, double b) {
  volatile double p = a * b;
  return p;
}

// ln((2x + 1) / 2^33), as engine/noise.py's _ln_unit.
double ln_unit(std::uint32_t x) {
  int exp = 0;
  double mant = std::frexp(static_cast<double>(2 * static_cast<std::uint64_t>(x) + 1), &exp);
  double m = mant;
  if (mant < kSqrt1_2) {
    m = mant * 2.0;
    exp -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = mul(s, s);
  double p = 1.0 / static_cast<double>(2 * kLogTerms + 1);
  for (int j = kLogTerms - 1; j >= 0; --j) p = 1.0 / static_cast<double>(2 * j + 1) + mul(s2, p);
  const double ln_m = mul(2.0 * s, p);
  return mul(static_cast<double>(exp) - 33.0, kLn2) + ln_m;
}

// cos and sin of 2 pi y / 2^32, as engine/noise.py's _cos_sin_turn.
void cos_sin_turn(std::uint32_t y, double* cos_out, double* sin_out) {
  const unsigned quadrant = y >> 30;
  const double t = mul(static_cast<double>(y & 0x3FFFFFFFu), kHalfPi2m30);
  const double t2 = mul(t, t);
  double s = 1.0, c = 1.0;
  for (int i = 2 * kTrigTerms; i > 0; i -= 2) {
    s = 1.0 - mul(t2 / static_cast<double>(i * (i + 1)), s);
    c = 1.0 - mul(t2 / static_cast<double>((i - 1) * i), c);
  }
  s = mul(t, s);
  switch (quadrant) {
    case 0: *cos_out = c; *sin_out = s; break;
    case 1: *cos_out = -s; *sin_out = c; break;
    case 2: *cos_out = -c; *sin_out = -s; break;
    default: *cos_out = s; *sin_out = -c; break;
  }
}

}  // namespace

PhiloxCounter philox4x32(const PhiloxCounter& counter, const PhiloxKey& key) {
  PhiloxCounter c = counter;
  std::uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * c[2];
    c = {static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<std::uint32_t>(p1),
         static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<std::uint32_t>(p0)};
  }
  return c;
}

std::array<float, 4> box_muller(const PhiloxCounter& words) {
  std::array<float, 4> out{};
  for (int pair = 0; pair < 2; ++pair) {
    const double radius = std::sqrt(-2.0 * ln_unit(words[2 * pair]));
    double c = 0.0, s = 0.0;
    cos_sin_turn(words[2 * pair + 1], &c, &s);
    out[2 * pair] = static_cast<float>(mul(radius, c));
    out[2 * pair + 1] = static_cast<float>(mul(radius, s));
  }
  return out;
}

void initial_noise(std::uint64_t seed, std::uint32_t anchor, std::uint32_t size, float* out, std::size_t count) {
  const PhiloxKey key = {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  for (std::size_t start = 0; start < count; start += 4) {
    const std::uint64_t block = start / 4;
    const PhiloxCounter counter = {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), anchor, size};
    const std::array<float, 4> z = box_muller(philox4x32(counter, key));
    for (std::size_t j = 0; j < 4 && start + j < count; ++j) out[start + j] = z[j];
  }
}

std::vector<float> initial_noise(std::uint64_t seed, std::uint32_t anchor, std::uint32_t size, std::size_t count) {
  std::vector<float> out(count);
  initial_noise(seed, anchor, size, out.data(), count);
  return out;
}

}  // namespace lredit
