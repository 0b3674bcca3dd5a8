"""Editor: the Python API. `Editor.from_bundle(path, backend="ort").edit(image, prompt)`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lredit.config import Backend, EditConfig
from lredit.engine.core.batch import EditRequest, edit_batch
from lredit.engine.core.pipeline import EditPipeline, EditResult


class Editor:
    def __init__(self, pipeline: EditPipeline, backend: Backend | str):
        self.pipeline = pipeline
        self.backend = Backend.parse(backend)

    @classmethod
    def from_bundle(cls, path, backend: Backend | str = Backend.ORT, providers: Sequence[str] | None = None,
                    config: EditConfig | None = None, verify: "bool | str" = True, cuda_graph: bool = False) -> "Editor":
        """ort: the bundle's ONNX graphs (providers default to CPU; with the CUDA provider and
        CuPy, IO binding keeps tensors on the GPU); torch: the models the bundle was exported
        from (the reference); torch-cuda: those models on the engine's torch-CUDA path (CUDA fp16
        when `providers` name CUDA, else the CPU in fp32); trt: the bundle's TensorRT engines (built with lr-export --trt on
        this GPU), `cuda_graph` capturing the UNet step. `verify`: True checks the files' sha256
        where their size+mtime stamp changed since they were last found right, "full" hashes every
        file, False none (engine/file_checks.py). The ort pipeline's `open_report` says how long
        the open took and what the session cache did."""
        backend = Backend.parse(backend)
        if backend is Backend.ORT:
            from lredit.engine.runtimes.ort_runtime import load_ort_pipeline

            return cls(load_ort_pipeline(Path(path), providers, config, verify), backend)
        if backend is Backend.TORCH:
            from lredit.engine.runtimes.bundle_loader import bundle_config
            from lredit.engine.runtimes.reference.torch_backend import load_reference
            from lredit.manifest import read_manifest

            manifest = read_manifest(Path(path))
            return cls(load_reference(manifest.models.source, bundle_config(manifest, config)), backend)
        if backend is Backend.TORCH_CUDA:
            return cls(_torch_cuda_from_bundle(Path(path), providers, config), backend)
        from lredit.engine.runtimes.trt_runtime import load_trt_pipeline

        return cls(load_trt_pipeline(Path(path), config, verify, cuda_graph), backend)

    def edit(self, image, prompt: str, source_caption: str | None = None, *, dump_graph_io=None, **overrides) -> EditResult:
        """`dump_graph_io`: a folder that receives every graph call's inputs and outputs
        (engine/graph_io.py), which the C++ host's ReplayRunner replays."""
        if dump_graph_io is not None:
            from lredit.engine.frontends.graph_io import record_edit

            return record_edit(self.pipeline, image, prompt, dump_graph_io, source_caption, **overrides)
        return self.pipeline.edit(image, prompt, source_caption, **overrides)

    def edit_batch(self, requests: Sequence[EditRequest]) -> list[EditResult | Exception]:
        """Several edits at once (engine/batch.py): item i is request i's result, or the exception
        that request alone failed with."""
        return edit_batch(self.pipeline, requests)


def _torch_cuda_from_bundle(path: Path, providers: Sequence[str] | None, config: EditConfig | None) -> EditPipeline:
    """The models a bundle was exported from, on the torch-CUDA path (its device's defaults)."""
    from lredit.config import CUDA_PROVIDER
    from lredit.engine.runtimes.bundle_loader import bundle_config
    from lredit.engine.runtimes.torch_cuda import TorchEngineOptions, load_torch_cuda
    from lredit.manifest import read_manifest

    manifest = read_manifest(path)
    device = "cuda" if CUDA_PROVIDER in (providers or ()) else "cpu"
    return load_torch_cuda(manifest.models.source, bundle_config(manifest, config), TorchEngineOptions.for_device(device))
