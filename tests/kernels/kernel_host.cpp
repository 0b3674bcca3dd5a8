// Host emulation of kernels/roi_pool.cu for CPU-only CI: the kernel source compiled by g++,
// each launch run as a loop over its grid with one thread per block (the kernels stride their
// threads over channels, so one thread computes everything a block would; __syncthreads is a
// no-op then). fp16 is widened in software instead of the PTX cvt. Built by tests/test_kernels.py.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

struct dim3 { unsigned x = 0, y = 0, z = 0; };
static dim3 blockIdx, threadIdx, blockDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() {}

static std::vector<float> host_shared;
static inline float* lredit_host_shared(int n) {
    host_shared.assign(static_cast<size_t>(n), 0.0f);
    return host_shared.data();
}

// IEEE 754 binary16 -> binary32, subnormals and inf/nan included.
static inline float lredit_half_to_float(unsigned short h) {
    const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            int e = -1;
            uint32_t m = mant;
            do { ++e; m <<= 1; } while ((m & 0x400u) == 0);
            bits = sign | ((127 - 15 - e) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}

#include "../../kernels/roi_pool.cu"

extern "C" {

// which: 0 roi_pool_f32, 1 roi_pool_f16, 2 roi_pool_fused_f32, 3 roi_pool_fused_f16
void host_roi_pool(int which, const void* features, const float* weight, const float* bias, const int* anchors,
                   const int* half_sizes, const int* geometry, float spatial_scale, float* out, float* boxes,
                   int grid_x, int grid_y) {
    blockDim.x = 1;
    threadIdx.x = 0;
    for (int y = 0; y < grid_y; ++y) {
        for (int x = 0; x < grid_x; ++x) {
            blockIdx.x = x;
            blockIdx.y = y;
            switch (which) {
                case 0: roi_pool_f32(static_cast<const float*>(features), anchors, half_sizes, geometry, spatial_scale, out, boxes); break;
                case 1: roi_pool_f16(static_cast<const half_bits*>(features), anchors, half_sizes, geometry, spatial_scale, out, boxes); break;
                case 2: roi_pool_fused_f32(static_cast<const float*>(features), weight, bias, anchors, half_sizes, geometry, spatial_scale, out, boxes); break;
                default: roi_pool_fused_f16(static_cast<const half_bits*>(features), weight, bias, anchors, half_sizes, geometry, spatial_scale, out, boxes); break;
            }
        }
    }
}

void host_box_masks(const int* boxes, int count, int size, int factor, float* masks, float* latent, int threads) {
    const long total = static_cast<long>(count) * size * size;
    blockDim.x = static_cast<unsigned>(threads);
    for (long block = 0; block * threads < total; ++block) {
        blockIdx.x = static_cast<unsigned>(block);
        for (int t = 0; t < threads; ++t) {
            threadIdx.x = static_cast<unsigned>(t);
            box_masks(boxes, count, size, factor, masks, latent);
        }
    }
}

}  // extern "C"
