"""ONNX -> TensorRT engines: strongly typed networks (fp16 comes from the fp16 ONNX), profiles from
the specs, a timing cache in the bundle. Works against `tensorrt` (GPU machines) and
`tensorrt_rtx` (builds ahead of time without a GPU; proves the graphs parse and build)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from lredit import bundle as layout
from lredit.atomic import write_bytes_atomic
from lredit.errors import ExportError
from lredit.manifest import EngineInfo, parse_manifest, write_manifest
from lredit.trt import require_tensorrt as _require_tensorrt


def require_tensorrt(allow_rtx: bool = False):
    """The TensorRT module, or an ExportError saying what is missing and how to install it."""
    return _require_tensorrt(
        ExportError,
        "pip install 'lredit[trt]' on a machine with an NVIDIA GPU (driver + CUDA 12/13); the ONNX bundle is "
        "usable with --backend ort meanwhile",
        allow_rtx=allow_rtx,
    )


def gpu_compute_capability() -> str:
    """'sm90'-style tag of GPU 0, or an ExportError when no GPU/driver is present."""
    try:
        from cuda.bindings import driver
    except ImportError:
        try:
            from cuda import cuda as driver  # older cuda-python
        except ImportError:
            raise ExportError("building TensorRT engines needs a GPU and cuda-python: pip install 'lredit[gpu,trt]'") from None
    try:
        (err,) = driver.cuInit(0)
        if int(err) != 0:
            raise RuntimeError(err)
        err, major = driver.cuDeviceGetAttribute(driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0)
        err2, minor = driver.cuDeviceGetAttribute(driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0)
    except Exception as exc:  # cuInit raises or returns an error without a driver
        raise ExportError(f"no usable NVIDIA GPU for TensorRT engine builds ({exc}); run lr-export --trt on the GPU machine") from None
    return f"sm{major}{minor}"


def profile_key(profile: dict) -> str:
    return hashlib.sha256(json.dumps(profile, sort_keys=True).encode()).hexdigest()[:8]


def build_engine(trt, onnx_path: Path, profile: dict, engine_path: Path, timing_cache: Path | None = None) -> None:
    """Parse `onnx_path` into a strongly typed network, add the min/opt/max profile, build and
    write `engine_path` atomically. Raises ExportError with the parser's messages."""
    logger = trt.Logger(trt.Logger.WARNING)
    if hasattr(trt, "init_libnvinfer_plugins"):  # RoiAlign (rgn_roi) is a plugin in TensorRT
        trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    flags = 1 << int(typed) if typed is not None else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    opt = builder.create_optimization_profile()
    for name, shapes in profile.items():
        opt.set_shape(name, tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
    config.add_optimization_profile(opt)
    cache = None
    if timing_cache is not None and hasattr(config, "create_timing_cache"):
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine for {onnx_path.name} (see the log above)")
    write_bytes_atomic(engine_path, bytes(serialized))
    if cache is not None:
        write_bytes_atomic(timing_cache, bytes(cache.serialize()))


def _stale_reason(bundle: Path, rel: str, previous: EngineInfo | None, onnx_sha: str) -> str | None:
    """Why the engine at `rel` must be (re)built, or None when it was built from this very graph
    with this TensorRT, profile and GPU and its file is intact."""
    if not (bundle / rel).is_file():
        return "none yet"
    if not previous or previous.file != rel:
        return "not recorded in the manifest"
    if previous.onnx_sha256 != onnx_sha:
        return "its ONNX graph changed"
    if layout.sha256_file(bundle / rel) != previous.sha256:
        return "file corrupt"
    return None


def build_engines(bundle: Path, manifest: dict | None = None, on_graph=None, *, trt=None, sm: str | None = None,
                  graphs=None) -> dict:
    """Build an engine per graph of the bundle (or of `graphs`) and record them in the manifest
    (the one lr-export just wrote, or the bundle's own)."""
    trt = trt or require_tensorrt()
    sm = sm or gpu_compute_capability()
    bundle = Path(bundle)
    if manifest is None:
        manifest = layout.read_manifest_data(bundle)
        if manifest is None:
            raise ExportError(f"{bundle} has no readable {layout.MANIFEST}; export the bundle first (lr-export --out {bundle})")
    typed = parse_manifest(manifest, bundle)
    engines, entries = {}, dict(typed.graphs)
    for name, entry in typed.graphs.items():
        if graphs is not None and name not in graphs:
            continue
        profile = entry.profile_lists()
        rel = layout.engine_name(name, entry.precision.value, profile_key(profile), trt.__version__, sm)
        onnx_sha = entry.files[entry.file]
        stale = _stale_reason(bundle, rel, entry.engine, onnx_sha)
        if stale:
            build_engine(trt, bundle / entry.file, profile, bundle / rel, bundle / layout.TIMING_CACHE)
            status = f"engine built ({stale}): {rel}"
        else:
            status = f"engine reused (unchanged): {rel}"
        engine = EngineInfo(file=rel, sha256=layout.sha256_file(bundle / rel), tensorrt=trt.__version__, sm=sm, onnx_sha256=onnx_sha)
        entries[name] = dataclasses.replace(entry, engine=engine)
        engines[name] = rel
        if on_graph:
            on_graph(name, status)
    write_manifest(dataclasses.replace(typed, graphs=entries))
    return engines
