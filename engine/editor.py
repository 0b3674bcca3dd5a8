"""Editor: the Python API. `Editor.from_bundle(path, backend="ort").edit(image, prompt)`."""

from __future__ import annotations

from pathlib import Path

from .config import EditConfig
from .errors import BundleError
from .pipeline import EditPipeline, EditResult

BACKENDS = ("ort", "torch", "trt")


class Editor:
    def __init__(self, pipeline: EditPipeline, backend: str):
        self.pipeline = pipeline
        self.backend = backend

    @classmethod
    def from_bundle(cls, path, backend: str = "ort", providers=None, config: EditConfig | None = None, verify: bool = True,
                    cuda_graph: bool = False) -> "Editor":
        """ort: the bundle's ONNX graphs (providers default to CPU; with the CUDA provider and
        CuPy, IO binding keeps tensors on the GPU); torch: the models the bundle was exported
        from (the reference); trt: the bundle's TensorRT engines (built with lr-export --trt on
        this GPU), `cuda_graph` capturing the UNet step."""
        if backend == "ort":
            from .runtime import load_ort_pipeline

            return cls(load_ort_pipeline(Path(path), providers, config, verify), backend)
        if backend == "torch":
            from .reference.models import ModelSources, load_models
            from .reference.torch_backend import reference_pipeline
            from .runtime import bundle_config, read_manifest

            manifest = read_manifest(Path(path))
            cfg = bundle_config(manifest, config)
            models = load_models(ModelSources.parse(manifest["models"]["source"]), sizes=len(cfg.half_sizes),
                                 channels=cfg.proj_channels, roi_size=cfg.roi_size, proj_seed=cfg.proj_seed)
            return cls(reference_pipeline(models, cfg), backend)
        if backend == "trt":
            from .trt_runtime import load_trt_pipeline

            return cls(load_trt_pipeline(Path(path), config, verify, cuda_graph), backend)
        raise BundleError(f"backend {backend!r} is unknown; expected one of {BACKENDS}")

    def edit(self, image, prompt: str, source_caption: str | None = None, *, dump_graph_io=None, **overrides) -> EditResult:
        """`dump_graph_io`: a folder that receives every graph call's inputs and outputs
        (engine/graph_io.py), which the C++ host's ReplayRunner replays."""
        if dump_graph_io is not None:
            from .graph_io import record_edit

            return record_edit(self.pipeline, image, prompt, dump_graph_io, source_caption, **overrides)
        return self.pipeline.edit(image, prompt, source_caption, **overrides)
