"""The fused ROI-pool CUDA kernel: NVRTC and nvcc builds (CPU machines), the loader's cache and
fallback, the numpy reference of the kernel's whole function, and kernel-vs-reference on GPU."""

import ctypes
import importlib.util
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lredit.kernels import loader
from lredit.kernels import roi_pool_ref as R
from lredit.kernels.geometry import box_masks, proposal_boxes

FP32_TOL = 1e-5  # kernel (fp32 accumulation) vs float64 reference, unit-scale inputs
FP32_FUSED_TOL = 1e-4  # fused: a d-long fp32 dot product per output
FP16_TOL = 5e-3  # fp16 inputs against the fp32 reference: the rounding of values up to ~4

try:
    loader.nvrtc_version()
    HAVE_NVRTC = True
except Exception:  # noqa: BLE001 - any failure means: no NVRTC here
    HAVE_NVRTC = False
needs_nvrtc = pytest.mark.skipif(not HAVE_NVRTC, reason="cuda-python NVRTC bindings or libnvrtc not installed")
GPU, GPU_REASON = loader.cuda_device_available()
needs_gpu = pytest.mark.skipif(not GPU, reason=f"needs a CUDA GPU: {GPU_REASON}")


def _kernel_resources():
    """tools/kernel_resources.py (a dev tool, not part of the package), loaded from the checkout."""
    path = Path(__file__).resolve().parents[2] / "tools" / "kernel_resources.py"
    spec = importlib.util.spec_from_file_location("kernel_resources", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_nvrtc
@pytest.mark.parametrize("sm", [80, 90])
def test_nvrtc_compiles_the_kernel_for_each_sm(sm):
    cubin = loader.compile_cubin(loader.SOURCE.read_bytes(), sm)
    assert cubin[:4] == b"\x7fELF"
    for name in loader.ENTRY_POINTS:
        assert name.encode() in cubin


@needs_nvrtc
def test_cubin_cache_is_keyed_and_reused(tmp_path, monkeypatch):
    first = loader.cached_cubin(90, tmp_path)
    assert "sm90" in first.name and first.read_bytes()[:4] == b"\x7fELF"
    monkeypatch.setattr(loader, "compile_cubin", lambda *a: pytest.fail("recompiled a cached kernel"))
    assert loader.cached_cubin(90, tmp_path) == first
    # another SM or another source is another entry
    monkeypatch.setattr(loader, "compile_cubin", lambda source, sm: b"\x7fELF fake")
    assert loader.cached_cubin(80, tmp_path) != first
    assert loader.cached_cubin(90, tmp_path, source=b"// changed\n" + loader.SOURCE.read_bytes()) != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temp file was left behind"


@needs_nvrtc
def test_compile_error_carries_nvrtc_log():
    with pytest.raises(loader.KernelBuildError, match=r"(?s)compiling roi_pool.cu failed.*undefined_name.*is undefined"):
        loader.compile_cubin(b'extern "C" __global__ void k() { undefined_name = 1; }', 90)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_nvcc_builds_without_warnings_for_sm80_and_sm90(tmp_path):
    compile_with_nvcc = _kernel_resources().compile_with_nvcc

    for sm in (80, 90):
        usage = compile_with_nvcc(sm, tmp_path)
        assert set(usage) == set(loader.ENTRY_POINTS)
        assert all(row["spill_stores"] == 0 and row["spill_loads"] == 0 for row in usage.values())


def test_fallback_to_reference_is_one_log_line(caplog):
    if GPU:
        pytest.skip("a GPU is present: the kernel is used")
    with caplog.at_level(logging.INFO, logger="lredit.kernels.loader"):
        pool = loader.roi_pooler()
    assert pool is R.roi_pool_anchors
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("ROI pooling runs on the numpy reference: ")


def _case(rng, k=5, sizes=(1, 3, 5, 9), rows=7, cols=9, d=24, c=6):
    anchors = np.stack([rng.integers(0, rows, k), rng.integers(0, cols, k)], axis=1)
    tokens = rng.standard_normal((rows * cols, d)).astype(np.float32)
    weight = (rng.standard_normal((c, d)) / np.sqrt(d)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    return tokens, (rows, cols), anchors, sizes, weight, bias


SPECS = [
    R.PoolSpec(out_size=4),
    R.PoolSpec(out_size=4, fused=True),
    R.PoolSpec(out_size=3, aligned=True, sampling_ratio=2, layout="authors", fused=True),
    R.PoolSpec(out_size=5, spatial_scale=0.125, swap_axes=True, layout="authors"),
]


@pytest.mark.parametrize("spec", SPECS)
def test_reference_of_the_kernel_function(spec):
    tokens, grid, anchors, sizes, weight, bias = _case(np.random.default_rng(3))
    pooled, boxes = R.roi_pool_anchors(tokens, grid, anchors, sizes, weight, bias, spec)
    np.testing.assert_array_equal(boxes, proposal_boxes(anchors, sizes, grid, fix_axes=not spec.swap_axes))
    # the same function, unfused and fused, agree within the fp32 bar
    other = R.roi_pool_anchors(tokens, grid, anchors, sizes, weight, bias, R.PoolSpec(**{**spec.__dict__,
                                                                                         "fused": not spec.fused}))[0]
    assert np.abs(pooled - other).max() <= FP32_TOL
    assert pooled.shape == (len(anchors), len(sizes) * weight.shape[0], spec.out_size, spec.out_size)


def test_reference_masks_at_pixel_and_latent_resolution():
    boxes = np.array([[0, 0, 63, 63], [8, 16, 23, 40], [60, 60, 63, 63]])
    masks, latent = R.rasterise_masks(boxes, 64, 8)
    np.testing.assert_array_equal(masks, box_masks(boxes, 64))
    assert latent.shape == (3, 8, 8)
    np.testing.assert_array_equal(latent[1], masks[1][::8, ::8])
    assert latent[2].sum() == 0 and masks[2].sum() == 16


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.gpu
@needs_gpu
def test_kernel_matches_reference(spec, dtype):
    import cupy as cp

    pool = loader.CudaRoiPool()
    for seed in range(3):  # fresh inputs each run
        tokens, grid, anchors, sizes, weight, bias = _case(np.random.default_rng(100 + seed))
        tokens = tokens.astype(dtype)
        want, want_boxes = R.roi_pool_anchors(tokens.astype(np.float32), grid, anchors, sizes, weight, bias, spec)
        out = cp.full(want.shape, cp.nan, dtype=cp.float32)  # poisoned: unwritten elements stay NaN
        boxes = cp.full(want_boxes.shape, cp.nan, dtype=cp.float32)
        got, got_boxes = pool(tokens, grid, anchors, sizes, weight, bias, spec, out=out, boxes_out=boxes)
        got, got_boxes = cp.asnumpy(got), cp.asnumpy(got_boxes)
        assert np.isfinite(got).all() and np.isfinite(got_boxes).all()
        np.testing.assert_array_equal(got_boxes, want_boxes)
        tol = FP16_TOL if dtype == "float16" else (FP32_FUSED_TOL if spec.fused else FP32_TOL)
        assert np.abs(got - want).max() <= tol


@pytest.mark.gpu
@needs_gpu
def test_mask_kernel_matches_reference():
    import cupy as cp

    pool = loader.CudaRoiPool()
    boxes = np.array([[0, 0, 511, 511], [8, 16, 230, 400], [500, 3, 511, 7]])
    want, want_latent = R.rasterise_masks(boxes, 512, 8)
    out = cp.full(want.shape, cp.nan, dtype=cp.float32)
    latent = cp.full(want_latent.shape, cp.nan, dtype=cp.float32)
    got, got_latent = pool.masks(boxes, 512, 8, out=out, latent_out=latent)
    np.testing.assert_array_equal(cp.asnumpy(got), want)
    np.testing.assert_array_equal(cp.asnumpy(got_latent), want_latent)


def test_nvcc_missing_is_a_clear_error(monkeypatch, tmp_path):
    resources = _kernel_resources()

    monkeypatch.setattr(resources.shutil, "which", lambda name: None)
    with pytest.raises(resources.NvccError, match="nvcc is not on PATH"):
        resources.compile_with_nvcc(90, tmp_path)



def test_microbench_says_what_it_needs(capsys):
    from lredit.bench.kernel_microbench import main

    if GPU:
        pytest.skip("a GPU is present")
    assert main(["--runs", "1"]) == 2
    assert "microbench: needs a CUDA GPU" in capsys.readouterr().err


# -- the CUDA source itself, run on the CPU: tests/kernel_host.cpp compiles it with g++ -------
HOST_TOL = 1e-5  # same arithmetic, another summation order


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not on PATH")
    lib_path = tmp_path_factory.mktemp("kernel_host") / "kernel_host.so"
    source = Path(__file__).with_name("kernel_host.cpp")
    built = subprocess.run([gxx, "-O1", "-shared", "-fPIC", "-std=c++17", "-Wall", "-Werror", "-o", str(lib_path),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    lib = ctypes.CDLL(str(lib_path))
    p, f, i = ctypes.c_void_p, ctypes.c_float, ctypes.c_int
    lib.host_roi_pool.argtypes = [i, p, p, p, p, p, p, f, p, p, i, i]
    lib.host_box_masks.argtypes = [p, i, i, i, p, p, i]
    return lib


def _ptr(array: np.ndarray):
    assert array.flags.c_contiguous
    return array.ctypes.data_as(ctypes.c_void_p)


def _host_pool(lib, tokens, grid, anchors, sizes, weight, bias, spec):
    """One emulated launch, as CudaRoiPool makes it; returns (pooled, boxes, the map it read)."""
    k, m = len(anchors), len(sizes)
    channels, depth = weight.shape
    half = tokens.dtype == np.float16
    if spec.fused:
        features, which = np.ascontiguousarray(tokens), 3 if half else 2
    else:
        projected = (tokens.astype(np.float32) @ weight.T + bias).T.reshape(channels, *grid)
        features, which = np.ascontiguousarray(projected.astype(tokens.dtype)), 1 if half else 0
    geometry = loader.launch_geometry(k, m, channels, depth, grid, spec)
    out = np.full((k, m * channels, spec.out_size, spec.out_size), np.nan, dtype=np.float32)  # poisoned
    boxes = np.full((k, m, 4), np.nan, dtype=np.float32)
    anchors32, sizes32 = np.ascontiguousarray(anchors, dtype=np.int32), np.asarray(sizes, dtype=np.int32)
    lib.host_roi_pool(which, _ptr(features), _ptr(weight), _ptr(bias), _ptr(anchors32), _ptr(sizes32), _ptr(geometry),
                      spec.spatial_scale, _ptr(out), _ptr(boxes), spec.out_size ** 2, k * m)
    return out, boxes, features


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_kernel_source_on_the_cpu_matches_reference(host_kernels, spec, dtype):
    for seed in range(3):
        tokens, grid, anchors, sizes, weight, bias = _case(np.random.default_rng(200 + seed))
        tokens = tokens.astype(dtype)
        got, got_boxes, read = _host_pool(host_kernels, tokens, grid, anchors, sizes, weight, bias, spec)
        assert np.isfinite(got).all() and np.isfinite(got_boxes).all(), "an output element was not written"
        want, want_boxes = R.roi_pool_anchors(tokens.astype(np.float32), grid, anchors, sizes, weight, bias, spec)
        np.testing.assert_array_equal(got_boxes, want_boxes)
        if not spec.fused:  # the kernel pooled this (possibly fp16-rounded) map: pool exactly it
            want = R.pool_proposals(read.astype(np.float32), want_boxes, spec.out_size, layout=spec.layout,
                                    **spec.roi_kwargs())
        tol = FP32_FUSED_TOL if spec.fused else HOST_TOL
        assert np.abs(got - want).max() <= tol


def test_mask_kernel_source_on_the_cpu_matches_reference(host_kernels):
    boxes = np.array([[0, 0, 63, 63], [8, 16, 23, 40], [60, 3, 63, 7], [5, 5, 4, 4]], dtype=np.int32)
    masks = np.full((4, 64, 64), np.nan, dtype=np.float32)
    latent = np.full((4, 8, 8), np.nan, dtype=np.float32)
    host_kernels.host_box_masks(_ptr(boxes), 4, 64, 8, _ptr(masks), _ptr(latent), 256)
    want, want_latent = R.rasterise_masks(boxes, 64, 8)
    np.testing.assert_array_equal(masks, want)
    np.testing.assert_array_equal(latent, want_latent)
