"""The TensorRT backend: the bundle's engines run with CuPy buffers on one CUDA stream.

Engines are tied to the TensorRT version and GPU they were built with; an engine built for
another is refused with both named and the command that rebuilds it. Outputs are CuPy arrays,
so encode -> denoise -> decode stays on the device (the pipeline copies to the host only where a
stage needs numpy). The UNet step can be captured once as a CUDA graph for a fixed batch and
replayed every step.

Nothing here runs without a GPU; tests/test_trt_runtime.py checks the refusal logic on CPU and
marks the rest `gpu`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from lredit.config import EditConfig
from lredit.engine.runtimes.bundle_loader import BundlePipeline, bundle_assets, bundle_config, require_graphs, verify_files
from lredit.errors import BundleError, NumericalError
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import GraphEntry, Manifest, read_manifest
from lredit.trt import require_tensorrt


def running_sm() -> str:
    """'sm90'-style tag of the current CUDA device (CuPy)."""
    try:
        import cupy
    except ImportError:
        raise BundleError("the TensorRT backend needs CuPy for GPU buffers: pip install 'lredit[gpu]'") from None
    try:
        return f"sm{cupy.cuda.Device().compute_capability}"
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise BundleError(f"the TensorRT backend needs a CUDA GPU ({exc}); use --backend ort on this machine") from None


def check_engine(entry: GraphEntry, trt_version: str, sm: str, manifest: Manifest) -> Path:
    """The engine file of `entry`'s graph if it was built for this TensorRT and GPU; else a
    BundleError naming what it was built for, what runs here, and the rebuild command."""
    graph, engine, rebuild = entry.name, entry.engine, manifest.rebuild_command()
    if engine is None:
        raise BundleError(f"bundle {manifest.bundle} has no TensorRT engine for {graph}: build them on this GPU machine "
                          f"with {rebuild}")
    built = (engine.tensorrt, engine.sm)
    if built != (trt_version, sm):
        raise BundleError(
            f"TensorRT engine {engine.file} was built with TensorRT {built[0]} for {built[1]}; this machine "
            f"runs TensorRT {trt_version} on {sm}. Engines do not move between versions or GPUs: rebuild them with "
            f"{rebuild} (the ONNX graphs are reused)"
        )
    graph_sha = entry.files.get(entry.file)
    if engine.onnx_sha256 and graph_sha and engine.onnx_sha256 != graph_sha:
        raise BundleError(f"TensorRT engine {engine.file} was built from an older {graph} graph than the bundle "
                          f"holds now; rebuild it with {rebuild}")
    path = manifest.path(engine.file)
    if not path.is_file():
        raise BundleError(f"TensorRT engine missing: {path}; rebuild with {rebuild}")
    return path


class TrtSession:
    """One engine: named inputs (numpy or CuPy) -> named CuPy outputs, on `stream`."""

    def __init__(self, trt, path: Path, stream, cuda_graph: bool = False):
        import cupy as cp

        self.cp, self.stream = cp, stream
        logger = trt.Logger(trt.Logger.WARNING)
        if hasattr(trt, "init_libnvinfer_plugins"):  # RoiAlign and friends
            trt.init_libnvinfer_plugins(logger, "")
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise BundleError(f"TensorRT could not deserialize {path} (corrupt, or built by another version); "
                              "rebuild it with lr-export --trt")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = tuple(n for n in names if is_input[n])
        self.output_names = tuple(n for n in names if not is_input[n])
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.cuda_graph = cuda_graph
        self.graph = None  # a captured CUDA graph, see capture()
        self._static: dict = {}

    def _bind(self, feeds: Mapping) -> dict:
        """Device copies of the inputs and fresh output buffers, all bound to the context."""
        cp = self.cp
        bound = {}
        for name in self.input_names:
            arr = cp.ascontiguousarray(cp.asarray(feeds[name], dtype=self.dtypes[name]))
            bound[name] = arr
            self.context.set_input_shape(name, tuple(arr.shape))
            self.context.set_tensor_address(name, arr.data.ptr)
        for name in self.output_names:  # shapes are known once every input shape is set
            bound[name] = cp.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name])
            self.context.set_tensor_address(name, bound[name].data.ptr)
        return bound

    def run(self, feeds: Mapping) -> dict:
        if self.cuda_graph:
            if self.graph is None or not self._matches_static(feeds):
                self.capture(feeds)
            return self._replay(feeds)
        with self.stream:
            bound = self._bind(feeds)
            if not self.context.execute_async_v3(self.stream.ptr):
                raise NumericalError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        self.stream.synchronize()
        return {name: self._widen(bound[name]) for name in self.output_names}

    def _widen(self, arr):
        return arr.astype(self.cp.float32) if arr.dtype == np.float16 else arr

    # -- CUDA graph: capture one step for a fixed input shape, replay it with new values ----
    def capture(self, feeds: Mapping) -> None:
        """Capture execute for these input shapes; later runs with the same shapes copy their
        inputs into the captured buffers and replay (no per-step launch overhead)."""
        cp = self.cp
        with self.stream:
            self._static = self._bind({n: cp.array(feeds[n], dtype=self.dtypes[n]) for n in self.input_names})
            self.context.execute_async_v3(self.stream.ptr)  # warm-up: lazy allocations happen outside capture
            self.stream.begin_capture()
            self.context.execute_async_v3(self.stream.ptr)
            self.graph = self.stream.end_capture()
        self.stream.synchronize()

    def _matches_static(self, feeds: Mapping) -> bool:
        return all(tuple(np.shape(feeds[n])) == tuple(self._static[n].shape) for n in self.input_names)

    def _replay(self, feeds: Mapping) -> dict:
        with self.stream:
            for name in self.input_names:
                self._static[name][...] = self.cp.asarray(feeds[name], dtype=self.dtypes[name])
            self.graph.launch(self.stream)
        self.stream.synchronize()
        return {name: self._widen(self._static[name].copy()) for name in self.output_names}


def load_trt_pipeline(bundle: Path, config: EditConfig | None = None, verify: bool = True, cuda_graph: bool = False):
    """The bundle's TensorRT engines as an EditPipeline (ROI pooling on the fused CUDA kernel).
    cuda_graph: capture the UNet step once per batch shape and replay it every step."""
    from lredit.kernels.loader import roi_pooler

    manifest = read_manifest(Path(bundle))
    require_graphs(manifest)
    trt = require_tensorrt(BundleError, "pip install 'lredit[trt,gpu]' on the GPU machine, or run the bundle with "
                                        "--backend ort")
    sm = running_sm()
    import cupy as cp

    stream = cp.cuda.Stream(non_blocking=True)
    sessions = {}
    for name in PIPELINE_GRAPHS:
        entry = manifest.graphs[name]
        path = check_engine(entry, trt.__version__, sm, manifest)
        if verify:
            verify_files(manifest, {entry.engine.file: entry.engine.sha256})
        # The UNet runs once per step with the same shapes: the one worth a CUDA graph.
        sessions[name] = TrtSession(trt, path, stream, cuda_graph=cuda_graph and name == "unet")
    assets = bundle_assets(manifest, roi_pooler(prefer_gpu=True), verify)
    return BundlePipeline(sessions, assets, bundle_config(manifest, config), manifest)
