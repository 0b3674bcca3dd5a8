"""The torch-free runtime on ONNX Runtime: one session per graph behind the one session contract,
and the loader that runs a bundle's graphs with it.

Importing this module (and running an edit on the ORT backend) never imports torch, diffusers or
transformers.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lredit.config import CPU_PROVIDERS, CUDA_PROVIDER, EditConfig
from lredit.errors import BundleError
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import GraphEntry, read_manifest

from .arrays import to_host
from .bundle_loader import BundlePipeline, bundle_assets, bundle_config, require_graphs, verify_files

_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class OrtSession:
    """One graph on ONNX Runtime; feeds are cast to the dtypes the session declares."""

    def __init__(self, path: Path, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers or CPU_PROVIDERS))
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



def _check_io(entry: GraphEntry, session: OrtSession) -> None:
    expected = list(entry.input_names)
    if list(session.input_names) != expected:
        raise BundleError(f"graph {entry.name}: inputs {list(session.input_names)} differ from the manifest's {expected}")
    for meta, spec in zip(session.session.get_inputs(), entry.inputs):
        for got, want in zip(meta.shape, spec.shape):
            if isinstance(want, int) and isinstance(got, int) and got != want:
                raise BundleError(f"graph {entry.name}: input {meta.name} has shape {meta.shape}, the manifest says {list(spec.shape)}")


def load_ort_pipeline(bundle: Path, providers: Sequence[str] | None = None, config: EditConfig | None = None,
                      verify: bool = True) -> BundlePipeline:
    """The bundle's ONNX graphs on ONNX Runtime (CPU unless `providers` say otherwise)."""
    manifest = read_manifest(Path(bundle))
    require_graphs(manifest)
    sessions = {}
    for name in PIPELINE_GRAPHS:
        entry = manifest.graphs[name]
        if verify:
            verify_files(manifest, entry.files)
        # The ONNX Runtime variant (attention fused) where export wrote one; same inputs and outputs.
        sessions[name] = OrtSession(manifest.path(entry.ort_graph), providers)
        _check_io(entry, sessions[name])
    assets = bundle_assets(manifest, _roi_pool_for(providers), verify)
    return BundlePipeline(sessions, assets, bundle_config(manifest, config), manifest)


def _roi_pool_for(providers) -> object:
    """The fused CUDA kernel when the graphs run on the GPU, the numpy reference otherwise."""
    from lredit.kernels.loader import roi_pooler

    return roi_pooler(prefer_gpu=CUDA_PROVIDER in (providers or ()))
