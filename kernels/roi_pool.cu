// Fused multi-size ROI pooling for the region network, and box -> mask rasterisation.
//
// One launch of roi_pool_* computes, for K anchor cells and M half-sizes, the clamped box of
// every (anchor, size) pair and its ROI-aligned features, written straight into the RGN input
// [K, M*c, l, l]. Sampling follows torchvision.ops.roi_align (average pooling, `aligned`,
// adaptive or fixed sampling ratio, samples beyond one cell outside the map add 0, clamped
// bilinear at the edge); kernels/roi_pool_ref.py is the numpy reference of exactly this.
//
// The *_fused variants read the raw DINO tokens [H*W, d] and apply the 1x1 projection
// (weight [c, d], bias [c]) after pooling: pooling is linear, so the two commute, and the bias
// enters scaled by the bin's on-map sample share, as if it had been added before pooling.
//
// No headers: fp16 is read as raw bits and widened with cvt, so NVRTC (no include path at run
// time) and nvcc compile the same text. Accumulation is fp32 for both input types.
// tests/kernel_host.cpp also compiles this file with g++ (one thread per block, the two
// `#ifndef __CUDA_ARCH__` branches) so CPU-only CI runs the kernels' indexing and arithmetic.

typedef unsigned short half_bits;

__device__ __forceinline__ float load_value(const float* p, long i) { return p[i]; }

__device__ __forceinline__ float load_value(const half_bits* p, long i) {
#ifdef __CUDA_ARCH__
    float out;
    asm("cvt.f32.f16 %0, %1;" : "=f"(out) : "h"(p[i]));
    return out;
#else
    return lredit_half_to_float(p[i]);  // host emulation (tests/kernel_host.cpp) only
#endif
}

// Geometry shared by every launch. Boxes are (x1, y1, x2, y2) in feature cells.
// Launch: grid (l*l, K*M), one block per (box, output bin); threads stride over channels.
struct PoolParams {
    int anchors;          // K
    int sizes;            // M
    int channels;         // c: output channels per size
    int depth;            // d: raw token width (fused variants)
    int rows;             // H: feature rows
    int cols;             // W: feature cols
    int out_size;         // l
    int sampling_ratio;   // <= 0: adaptive, ceil(roi / l)
    int aligned;          // torchvision `aligned`: half-cell shift, no 1-cell minimum
    int swap_axes;        // 1: the authors' code, anchor (row, col) used as (x, y)
    int authors_layout;   // 1: the authors' [M, K] stacking reshaped without a permute
    float spatial_scale;
};

// The launch passes the geometry as 11 ints (in PoolParams' order) plus the scale: plain
// arrays cross every binding (CuPy, cuda-python) without a struct layout to agree on.
__device__ __forceinline__ PoolParams params_from(const int* g, float spatial_scale) {
    PoolParams p;
    p.anchors = g[0]; p.sizes = g[1]; p.channels = g[2]; p.depth = g[3]; p.rows = g[4]; p.cols = g[5];
    p.out_size = g[6]; p.sampling_ratio = g[7]; p.aligned = g[8]; p.swap_axes = g[9]; p.authors_layout = g[10];
    p.spatial_scale = spatial_scale;
    return p;
}

struct Bin {
    float y0, x0, bin_h, bin_w;  // first sample's bin origin and the bin size, in cells
    int grid_h, grid_w;
    float inv_count;
};

__device__ __forceinline__ int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

struct Box {
    float x1, y1, x2, y2;
};

// The clamped box of (anchor k, size m), in feature cells.
__device__ Box box_of(const PoolParams& p, const int* anchors, const int* half_sizes, int k, int m) {
    const int r = anchors[2 * k], c = anchors[2 * k + 1];
    const int cx = p.swap_axes ? r : c;
    const int cy = p.swap_axes ? c : r;
    const int s = half_sizes[m];
    Box box;
    box.x1 = (float)clamp_int(cx - s, 0, p.cols - 1);
    box.y1 = (float)clamp_int(cy - s, 0, p.rows - 1);
    box.x2 = (float)clamp_int(cx + s, 0, p.cols - 1);
    box.y2 = (float)clamp_int(cy + s, 0, p.rows - 1);
    return box;
}

// The first thread of a box's bin 0 writes the box out.
__device__ __forceinline__ void write_box(const Box& box, int n, float* boxes_out) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        boxes_out[4 * n] = box.x1;
        boxes_out[4 * n + 1] = box.y1;
        boxes_out[4 * n + 2] = box.x2;
        boxes_out[4 * n + 3] = box.y2;
    }
}

__device__ Bin bin_of(const PoolParams& p, const Box& box, int py, int px) {
    const float offset = p.aligned ? 0.5f : 0.0f;
    const float x1 = box.x1 * p.spatial_scale - offset;
    const float y1 = box.y1 * p.spatial_scale - offset;
    float roi_w = box.x2 * p.spatial_scale - offset - x1;
    float roi_h = box.y2 * p.spatial_scale - offset - y1;
    if (!p.aligned) {
        roi_w = fmaxf(roi_w, 1.0f);
        roi_h = fmaxf(roi_h, 1.0f);
    }
    Bin b;
    b.bin_h = roi_h / p.out_size;
    b.bin_w = roi_w / p.out_size;
    b.grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : (int)ceilf(roi_h / p.out_size);
    b.grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : (int)ceilf(roi_w / p.out_size);
    const int count = b.grid_h * b.grid_w;
    b.inv_count = 1.0f / (float)(count > 1 ? count : 1);
    b.y0 = y1 + py * b.bin_h;
    b.x0 = x1 + px * b.bin_w;
    return b;
}

// Bilinear taps of one sample: 4 flat indices into the H*W map and their weights (all 0 off map).
struct Taps {
    int idx[4];
    float w[4];
};

__device__ Taps taps_at(const PoolParams& p, float y, float x) {
    Taps t;
    if (y < -1.0f || y > (float)p.rows || x < -1.0f || x > (float)p.cols) {
        for (int i = 0; i < 4; ++i) { t.idx[i] = 0; t.w[i] = 0.0f; }
        return t;
    }
    y = fmaxf(y, 0.0f);
    x = fmaxf(x, 0.0f);
    int y_low = (int)y, x_low = (int)x, y_high, x_high;
    if (y_low >= p.rows - 1) { y_high = y_low = p.rows - 1; y = (float)y_low; } else { y_high = y_low + 1; }
    if (x_low >= p.cols - 1) { x_high = x_low = p.cols - 1; x = (float)x_low; } else { x_high = x_low + 1; }
    const float ly = y - y_low, lx = x - x_low, hy = 1.0f - ly, hx = 1.0f - lx;
    t.idx[0] = y_low * p.cols + x_low;  t.w[0] = hy * hx;
    t.idx[1] = y_low * p.cols + x_high; t.w[1] = hy * lx;
    t.idx[2] = y_high * p.cols + x_low; t.w[2] = ly * hx;
    t.idx[3] = y_high * p.cols + x_high; t.w[3] = ly * lx;
    return t;
}

__device__ __forceinline__ long out_index(const PoolParams& p, int k, int m, int ch, int bin) {
    const int plane = p.out_size * p.out_size;
    const long slot = p.authors_layout ? ((long)m * p.anchors + k) : ((long)k * p.sizes + m);
    return (slot * p.channels + ch) * plane + bin;
}

// grid: (l*l, K*M); block: threads over channels. features [c, H, W] (already projected).
template <typename T>
__device__ void roi_pool_body(const T* features, const int* anchors, const int* half_sizes, PoolParams p,
                              float* out, float* boxes_out) {
    const int bin = blockIdx.x, n = blockIdx.y;
    const int k = n / p.sizes, m = n % p.sizes;
    const Box box = box_of(p, anchors, half_sizes, k, m);
    write_box(box, n, boxes_out);
    const Bin b = bin_of(p, box, bin / p.out_size, bin % p.out_size);
    const long plane = (long)p.rows * p.cols;
    for (int ch = threadIdx.x; ch < p.channels; ch += blockDim.x) {
        const T* map = features + ch * plane;
        float acc = 0.0f;
        for (int iy = 0; iy < b.grid_h; ++iy) {
            const float y = b.y0 + (iy + 0.5f) * b.bin_h / b.grid_h;
            for (int ix = 0; ix < b.grid_w; ++ix) {
                const Taps t = taps_at(p, y, b.x0 + (ix + 0.5f) * b.bin_w / b.grid_w);
                for (int i = 0; i < 4; ++i) acc += t.w[i] * load_value(map, t.idx[i]);
            }
        }
        out[out_index(p, k, m, ch, bin)] = acc * b.inv_count;
    }
}

// grid: (l*l, K*M); block: threads over d, then over c; dynamic shared memory: d floats.
// tokens [H*W, d]; weight [c, d] and bias [c] stay fp32.
template <typename T>
__device__ void roi_pool_fused_body(const T* tokens, const float* weight, const float* bias, const int* anchors,
                                    const int* half_sizes, PoolParams p, float* out, float* boxes_out) {
#ifdef __CUDA_ARCH__
    extern __shared__ float pooled_raw[];
#else
    float* pooled_raw = lredit_host_shared(p.depth);  // host emulation: one thread per block
#endif
    __shared__ float coverage;
    const int bin = blockIdx.x, n = blockIdx.y;
    const int k = n / p.sizes, m = n % p.sizes;
    const Box box = box_of(p, anchors, half_sizes, k, m);
    write_box(box, n, boxes_out);
    const Bin b = bin_of(p, box, bin / p.out_size, bin % p.out_size);
    for (int j = threadIdx.x; j < p.depth; j += blockDim.x) {
        float acc = 0.0f, on_map = 0.0f;
        for (int iy = 0; iy < b.grid_h; ++iy) {
            const float y = b.y0 + (iy + 0.5f) * b.bin_h / b.grid_h;
            for (int ix = 0; ix < b.grid_w; ++ix) {
                const Taps t = taps_at(p, y, b.x0 + (ix + 0.5f) * b.bin_w / b.grid_w);
                for (int i = 0; i < 4; ++i) {
                    acc += t.w[i] * load_value(tokens, (long)t.idx[i] * p.depth + j);
                    on_map += t.w[i];
                }
            }
        }
        pooled_raw[j] = acc * b.inv_count;
        if (j == 0) coverage = on_map * b.inv_count;
    }
    __syncthreads();
    for (int ch = threadIdx.x; ch < p.channels; ch += blockDim.x) {
        const float* row = weight + (long)ch * p.depth;
        float acc = 0.0f;
        for (int j = 0; j < p.depth; ++j) acc += row[j] * pooled_raw[j];
        out[out_index(p, k, m, ch, bin)] = acc + bias[ch] * coverage;
    }
}

extern "C" __global__ void roi_pool_f32(const float* features, const int* anchors, const int* half_sizes,
                                        const int* geometry, float spatial_scale, float* out, float* boxes_out) {
    roi_pool_body<float>(features, anchors, half_sizes, params_from(geometry, spatial_scale), out, boxes_out);
}

extern "C" __global__ void roi_pool_f16(const half_bits* features, const int* anchors, const int* half_sizes,
                                        const int* geometry, float spatial_scale, float* out, float* boxes_out) {
    roi_pool_body<half_bits>(features, anchors, half_sizes, params_from(geometry, spatial_scale), out, boxes_out);
}

extern "C" __global__ void roi_pool_fused_f32(const float* tokens, const float* weight, const float* bias,
                                              const int* anchors, const int* half_sizes, const int* geometry,
                                              float spatial_scale, float* out, float* boxes_out) {
    roi_pool_fused_body<float>(tokens, weight, bias, anchors, half_sizes, params_from(geometry, spatial_scale), out,
                               boxes_out);
}

extern "C" __global__ void roi_pool_fused_f16(const half_bits* tokens, const float* weight, const float* bias,
                                              const int* anchors, const int* half_sizes, const int* geometry,
                                              float spatial_scale, float* out, float* boxes_out) {
    roi_pool_fused_body<half_bits>(tokens, weight, bias, anchors, half_sizes, params_from(geometry, spatial_scale),
                                   out, boxes_out);
}

// All K masks at pixel resolution [K, S, S] and latent resolution [K, S/f, S/f] (the pixel mask
// sampled every f-th pixel, as the pipeline does) in one launch: one thread per pixel.
// boxes: [K, 4] inclusive pixel boxes (x1, y1, x2, y2). 1 = repaint.
extern "C" __global__ void box_masks(const int* boxes, int count, int size, int factor, float* masks,
                                     float* latent_masks) {
    const long plane = (long)size * size;
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count * plane) return;
    const int k = (int)(i / plane);
    const int y = (int)((i % plane) / size), x = (int)(i % size);
    const int* b = boxes + 4 * k;
    const float inside = (x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]) ? 1.0f : 0.0f;
    masks[i] = inside;
    if (y % factor == 0 && x % factor == 0) {
        const int side = size / factor;
        if (y / factor < side && x / factor < side)
            latent_masks[((long)k * side + y / factor) * side + x / factor] = inside;
    }
}
