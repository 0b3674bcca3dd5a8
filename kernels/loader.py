"""Loads kernels/roi_pool.cu for the running GPU, or falls back to the numpy reference.

The source is compiled at run time with NVRTC (cuda-python's bindings: CuPy has no public call
that returns the binary) to a cubin for the device's compute capability, cached on disk under a
key of source hash, NVRTC version and SM, and loaded with CuPy's `RawModule`. Nothing here needs
nvcc; compiling needs no GPU either, so `compile_cubin` is tested on CPU machines.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from lredit.atomic import write_bytes_atomic
from lredit.errors import KernelBuildError

from . import roi_pool_ref
from .roi_pool_ref import PoolSpec

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("roi_pool.cu")
ENTRY_POINTS = ("roi_pool_f32", "roi_pool_f16", "roi_pool_fused_f32", "roi_pool_fused_f16", "box_masks")
NVRTC_OPTIONS = ("-std=c++17",)  # no fast math: parity with the reference is the bar
THREADS = 128


def default_cache_dir() -> Path:
    """$LREDIT_KERNEL_CACHE, else ~/.cache/lredit/kernels."""
    env = os.environ.get("LREDIT_KERNEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "lredit" / "kernels"


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:  # cuda-python before 12.6 names the module cuda.nvrtc
        from cuda import nvrtc
    return nvrtc


def _check(nvrtc, result, prog=None, what="NVRTC") -> None:
    status = result[0] if isinstance(result, tuple) else result
    if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        detail = ""
        if prog is not None:
            _, size = nvrtc.nvrtcGetProgramLogSize(prog)
            buf = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, buf)
            detail = ":\n" + buf.decode(errors="replace").rstrip("\x00 \n")
        raise KernelBuildError(f"{what} failed ({status.name}){detail}")


def nvrtc_version() -> tuple[int, int]:
    nvrtc = _nvrtc()
    result = nvrtc.nvrtcVersion()
    _check(nvrtc, result, what="nvrtcVersion")
    return int(result[1]), int(result[2])


def compile_cubin(source: bytes, compute_capability: int) -> bytes:
    """Source -> cubin for sm_<compute_capability> (e.g. 90), with NVRTC; no GPU needed."""
    nvrtc = _nvrtc()
    result = nvrtc.nvrtcCreateProgram(source, SOURCE.name.encode(), 0, [], [])
    _check(nvrtc, result, what="nvrtcCreateProgram")
    prog = result[1]
    try:
        options = [f"--gpu-architecture=sm_{compute_capability}".encode(), *(o.encode() for o in NVRTC_OPTIONS)]
        _check(nvrtc, nvrtc.nvrtcCompileProgram(prog, len(options), options), prog, f"compiling {SOURCE.name}")
        result = nvrtc.nvrtcGetCUBINSize(prog)
        _check(nvrtc, result, what="nvrtcGetCUBINSize")
        cubin = b" " * result[1]
        _check(nvrtc, nvrtc.nvrtcGetCUBIN(prog, cubin), what="nvrtcGetCUBIN")
        return cubin
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def cached_cubin(compute_capability: int, cache_dir: Path | None = None, source: bytes | None = None) -> Path:
    """The cubin for this source, NVRTC and SM: from the cache, else compiled and written atomically."""
    source = SOURCE.read_bytes() if source is None else source
    major, minor = nvrtc_version()
    digest = hashlib.sha256(source + " ".join(NVRTC_OPTIONS).encode()).hexdigest()[:16]
    path = (cache_dir or default_cache_dir()) / f"roi_pool-{digest}-nvrtc{major}.{minor}-sm{compute_capability}.cubin"
    if path.exists():
        log.debug("ROI-pool kernel: cached %s", path)
        return path
    write_bytes_atomic(path, compile_cubin(source, compute_capability))
    log.info("ROI-pool kernel: compiled for sm_%d into %s", compute_capability, path)
    return path


def launch_geometry(anchors: int, sizes: int, channels: int, depth: int, grid, spec: PoolSpec) -> np.ndarray:
    """The 11 ints roi_pool.cu reads as PoolParams (same order as its params_from)."""
    rows, cols = grid
    return np.array([anchors, sizes, channels, depth, rows, cols, spec.out_size, spec.sampling_ratio,
                     int(spec.aligned), int(spec.swap_axes), int(spec.layout == "authors")], dtype=np.int32)


def _buffer(cp, given, shape):
    if given is None:
        return cp.empty(shape, dtype=cp.float32)
    if tuple(given.shape) != tuple(shape) or given.dtype != cp.float32 or not given.flags.c_contiguous:
        raise ValueError(f"output buffer is {given.dtype}{tuple(given.shape)}; expected contiguous float32{tuple(shape)}")
    return given


class CudaRoiPool:
    """The kernels on one CUDA device; inputs may be numpy or CuPy arrays, outputs are CuPy."""

    def __init__(self, cache_dir: Path | None = None):
        import cupy

        self.cp = cupy
        device = cupy.cuda.Device()
        self.compute_capability = int(device.compute_capability)
        module = cupy.RawModule(path=str(cached_cubin(self.compute_capability, cache_dir)))
        self.kernels = {name: module.get_function(name) for name in ENTRY_POINTS}

    def __call__(self, tokens, grid, anchors, half_sizes, weight, bias, spec: PoolSpec, out=None, boxes_out=None):
        """Same contract as roi_pool_ref.roi_pool_anchors: (pooled [K, M*c, l, l], boxes [K, M, 4]).
        `out` / `boxes_out`: preallocated float32 CuPy buffers to write into (else new ones)."""
        cp = self.cp
        tokens = cp.asarray(tokens)
        if tokens.dtype not in (cp.float32, cp.float16):
            tokens = tokens.astype(cp.float32)
        suffix = "f16" if tokens.dtype == cp.float16 else "f32"
        rows, cols = grid
        k, m = int(len(anchors)), len(half_sizes)
        weight = cp.ascontiguousarray(cp.asarray(weight, dtype=cp.float32))
        bias = cp.ascontiguousarray(cp.asarray(bias, dtype=cp.float32))
        channels, depth = weight.shape
        geometry = cp.asarray(launch_geometry(k, m, channels, depth, grid, spec))
        anchors_dev = cp.ascontiguousarray(cp.asarray(anchors, dtype=cp.int32))
        sizes_dev = cp.asarray(list(half_sizes), dtype=cp.int32)
        out = _buffer(cp, out, (k, m * channels, spec.out_size, spec.out_size))
        boxes = _buffer(cp, boxes_out, (k, m, 4))
        launch = (spec.out_size * spec.out_size, k * m)
        scale = np.float32(spec.spatial_scale)
        if spec.fused:
            self.kernels[f"roi_pool_fused_{suffix}"](
                launch, (THREADS,), (cp.ascontiguousarray(tokens), weight, bias, anchors_dev, sizes_dev, geometry, scale,
                                     out, boxes), shared_mem=4 * depth)
        else:
            projected = cp.ascontiguousarray((tokens.astype(cp.float32) @ weight.T + bias).T.reshape(channels, rows, cols))
            if suffix == "f16":
                projected = projected.astype(cp.float16)
            self.kernels[f"roi_pool_{suffix}"](launch, (THREADS,), (projected, anchors_dev, sizes_dev, geometry, scale,
                                                                   out, boxes))
        return out, boxes

    def masks(self, pixel_boxes, size: int, factor: int, out=None, latent_out=None):
        """Same contract as roi_pool_ref.rasterise_masks, one launch for all K masks."""
        cp = self.cp
        boxes = cp.ascontiguousarray(cp.asarray(pixel_boxes, dtype=cp.int32).reshape(-1, 4))
        count = int(boxes.shape[0])
        masks = _buffer(cp, out, (count, size, size))
        latent = _buffer(cp, latent_out, (count, size // factor, size // factor))
        total = count * size * size
        self.kernels["box_masks"](((total + 255) // 256,), (256,),
                                  (boxes, np.int32(count), np.int32(size), np.int32(factor), masks, latent))
        return masks, latent


RoiPool = Callable[..., tuple]


def cuda_device_available() -> tuple[bool, str]:
    """(True, '') when CuPy imports and sees a CUDA device, else (False, why not)."""
    try:
        import cupy
    except ImportError as exc:
        return False, f"CuPy is not installed ({exc}); pip install 'lredit[gpu]'"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        return False, f"no CUDA driver or device ({exc})"
    return (count > 0), ("" if count > 0 else "no CUDA device")


def roi_pooler(prefer_gpu: bool = True, cache_dir: Path | None = None) -> RoiPool:
    """The CUDA kernel where CuPy sees a GPU, else the numpy reference (said in one log line).
    A kernel that fails to compile is an error, not a fallback."""
    if prefer_gpu:
        available, reason = cuda_device_available()
        if available:
            try:
                return CudaRoiPool(cache_dir)
            except ImportError as exc:
                reason = f"cuda-python (NVRTC) is not installed ({exc}); pip install 'lredit[gpu]'"
        log.info("ROI pooling runs on the numpy reference: %s", reason)
    return roi_pool_ref.roi_pool_anchors
