// The engine's initial noise, bit for bit the same as lredit.engine.ops.noise.initial_noise (numpy).
//
// Philox4x32-10 keyed by the seed, counter (block, anchor, size), then Box-Muller in float64 with
// only IEEE-754 +, -, *, / and sqrt. The definition is engine/noise.py's module docstring.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lredit {

using PhiloxCounter = std::array<std::uint32_t, 4>;
using PhiloxKey = std::array<std::uint32_t, 2>;

// Philox4x32-10 (Random123's constants and round function) of one counter under a key.
PhiloxCounter philox4x32(const PhiloxCounter& counter, const PhiloxKey& key);

// Four float32 normals from one Philox block: z0, z1 of (w0, w1), then z0, z1 of (w2, w3).
std::array<float, 4> box_muller(const PhiloxCounter& words);

// `count` float32 standard normals for candidate (anchor, size) of an edit seeded `seed`: the
// C-ordered elements of numpy's initial_noise(seed, anchor, size, shape) with count = prod(shape).
void initial_noise(std::uint64_t seed, std::uint32_t anchor, std::uint32_t size, float* out, std::size_t count);
std::vector<float> initial_noise(std::uint64_t seed, std::uint32_t anchor, std::uint32_t size, std::size_t count);

}  // namespace lredit
