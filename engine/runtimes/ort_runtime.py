"""The torch-free runtime on ONNX Runtime: one session per graph behind the one session contract,
and the loader that runs a bundle's graphs with it.

Importing this module (and running an edit on the ORT backend) never imports torch, diffusers or
transformers.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lredit.config import CPU_PROVIDERS, CUDA_PROVIDER, EditConfig
from lredit.engine.ops.arrays import to_host
from lredit.engine.runtimes.bundle_loader import BundlePipeline, bundle_assets, bundle_config, check_signature, require_graphs
from lredit.engine.runtimes.file_checks import Verify, check_files
from lredit.engine.runtimes.session_cache import CacheKey, GraphOpen, OpenReport, SessionCache, graph_key
from lredit.errors import BundleError
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import GraphEntry, Manifest, read_manifest

log = logging.getLogger(__name__)

_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


# What every session is created with; part of the session cache's key. The two memory switches
# are ONNX Runtime's defaults (on); their measured effect is in bench/RESULTS.md.
SESSION_OPTIONS = {"graph_optimization_level": "ORT_ENABLE_ALL", "log_severity_level": "3",
                   "enable_cpu_mem_arena": "1", "enable_mem_pattern": "1"}


def _make_options():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = int(SESSION_OPTIONS["log_severity_level"])
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, SESSION_OPTIONS["graph_optimization_level"])
    options.enable_cpu_mem_arena = SESSION_OPTIONS["enable_cpu_mem_arena"] == "1"
    options.enable_mem_pattern = SESSION_OPTIONS["enable_mem_pattern"] == "1"
    return options


class OrtSession:
    """One graph on ONNX Runtime; feeds are cast to the dtypes the session declares. With a
    session cache and its key, the optimised graph comes from (or goes into) the cache."""

    def __init__(self, path: Path, providers: Sequence[str] | None = None, cache: SessionCache | None = None,
                 key: CacheKey | None = None):
        providers = list(providers or CPU_PROVIDERS)
        try:
            if cache is None:
                self.session, self.cache_status = SessionCache.open_direct(path, _make_options, providers)
            else:
                self.session, self.cache_status = cache.open(path, key, _make_options, providers)
        except Exception as exc:  # ORT raises its own exception types for unreadable models
            raise BundleError(f"ONNX Runtime cannot load {path}: {exc}; re-run lr-export to rebuild it") from None
        inputs = self.session.get_inputs()
        self.input_names = tuple(i.name for i in inputs)
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.input_dtypes = {i.name: _NP.get(i.type, np.float32) for i in inputs}
        self.providers = tuple(self.session.get_providers())
        # On the CUDA provider with CuPy present, IO binding keeps outputs on the GPU (CuPy arrays).
        self.io_binding = self.providers[:1] == (CUDA_PROVIDER,) and find_spec("cupy") is not None

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.io_binding:
            return self._run_bound(feeds)
        cast = {name: np.ascontiguousarray(to_host(feeds[name]), dtype=self.input_dtypes[name]) for name in self.input_names}
        outputs = self.session.run(None, cast)
        return {name: np.asarray(out, dtype=np.float32) if out.dtype == np.float16 else out
                for name, out in zip(self.output_names, outputs)}

    def _run_bound(self, feeds) -> dict:
        """CUDA provider with IO binding: CuPy inputs are bound in place and outputs stay on the
        device as CuPy arrays (fp16 outputs widened to fp32 on the device)."""
        import cupy as cp

        device = cp.cuda.Device().id
        cp.cuda.get_current_stream().synchronize()  # inputs made on CuPy's stream are complete
        binding = self.session.io_binding()
        held = []
        for name in self.input_names:
            arr = cp.ascontiguousarray(cp.asarray(feeds[name], dtype=self.input_dtypes[name]))
            held.append(arr)
            binding.bind_input(name, "cuda", device, arr.dtype, list(arr.shape), arr.data.ptr)
        for name in self.output_names:
            binding.bind_output(name, "cuda", device)
        self.session.run_with_iobinding(binding)  # synchronises its outputs
        outputs = {}
        for name, value in zip(self.output_names, binding.get_outputs()):
            dtype = np.dtype(_NP.get(value.data_type(), np.float32))
            shape = tuple(value.shape())
            nbytes = int(np.prod(shape)) * dtype.itemsize
            memory = cp.cuda.UnownedMemory(value.data_ptr(), nbytes, owner=value)
            arr = cp.ndarray(shape, dtype, cp.cuda.MemoryPointer(memory, 0))
            outputs[name] = arr.astype(cp.float32) if dtype == np.float16 else arr.copy()
        return outputs



_DTYPE_NAMES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64", "tensor(int32)": "int32"}


def _check_io(entry: GraphEntry, session: OrtSession) -> None:
    """The session's full signature against the manifest (bundle_loader.check_signature)."""
    def described(metas):
        return [(m.name, _DTYPE_NAMES.get(m.type, m.type), list(m.shape)) for m in metas]

    check_signature(entry, described(session.session.get_inputs()), described(session.session.get_outputs()))


def load_ort_pipeline(bundle: Path, providers: Sequence[str] | None = None, config: EditConfig | None = None,
                      verify: bool | Verify = True, session_cache: SessionCache | bool = True) -> BundlePipeline:
    """The bundle's ONNX graphs on ONNX Runtime (CPU unless `providers` say otherwise).

    Graphs open in parallel threads (ONNX Runtime releases the GIL while it builds a session), the
    UNet first; each through the session cache (`session_cache`: True for the default root, a
    SessionCache, or False for none). `verify`: see file_checks.Verify (True: stamp-checked)."""
    start = time.perf_counter()
    manifest = read_manifest(Path(bundle))
    require_graphs(manifest)
    mode = Verify.of(verify)
    cache = SessionCache() if session_cache is True else (session_cache or None)
    providers = list(providers or CPU_PROVIDERS)
    order = sorted(PIPELINE_GRAPHS, key=lambda g: -sum(_size(manifest.path(f)) for f in manifest.graphs[g].files))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        futures = {name: pool.submit(_open_graph, manifest, manifest.graphs[name], providers, mode, cache) for name in order}
        opened = {name: futures[name].result() for name in PIPELINE_GRAPHS}
    sessions = {name: session for name, (session, _) in opened.items()}
    assets = bundle_assets(manifest, _roi_pool_for(providers), mode)
    pipeline = BundlePipeline(sessions, assets, bundle_config(manifest, config), manifest)
    pipeline.open_report = OpenReport(round((time.perf_counter() - start) * 1000.0, 1), mode.value,
                                      tuple(report for _, report in opened.values()))
    log.info("opened %s in %.1f s (%s)", manifest.bundle, pipeline.open_report.total_ms / 1000, pipeline.open_report.summary())
    return pipeline


def _size(path: Path) -> int:
    """Bytes of a bundle file (0 when missing: the file check then names it)."""
    return path.stat().st_size if path.is_file() else 0


def _open_graph(manifest: Manifest, entry: GraphEntry, providers, mode: Verify, cache: SessionCache | None):
    start = time.perf_counter()
    hashed = check_files(manifest, entry.files, mode, cache.root if cache else None)
    # The ONNX Runtime variant (attention fused) where export wrote one; same inputs and outputs.
    path = manifest.path(entry.ort_graph)
    key = graph_key(entry.name, manifest.bundle, entry.files, providers, SESSION_OPTIONS) if cache else None
    session = OrtSession(path, providers, cache, key)
    _check_io(entry, session)
    return session, GraphOpen(entry.name, round((time.perf_counter() - start) * 1000.0, 1), session.cache_status, hashed)


def _roi_pool_for(providers) -> object:
    """The fused CUDA kernel when the graphs run on the GPU, the numpy reference otherwise."""
    from lredit.kernels.loader import roi_pooler

    return roi_pooler(prefer_gpu=CUDA_PROVIDER in (providers or ()))
