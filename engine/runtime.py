"""The torch-free runtime: a bundle's graphs on ONNX Runtime, behind the one session contract.

Importing this module (and running an edit on the ORT backend) never imports torch, diffusers or
transformers.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lredit.export import bundle as layout  # stdlib only: the bundle layout shared with the exporter

from .arrays import to_host
from .config import EditConfig
from .errors import BundleError, InputError
from .pipeline import EditPipeline, PipelineAssets
from .schedulers import make_scheduler
from .sessions import GRAPH_NAMES
from .tokenizer import ClipTokenizer

log = logging.getLogger(__name__)
_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class OrtSession:
    """One graph on ONNX Runtime; feeds are cast to the dtypes the session declares."""

    def __init__(self, path: Path, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as exc:  # ORT raises its own exception types for unreadable models
            raise BundleError(f"ONNX Runtime cannot load {path}: {exc}; re-run lr-export to rebuild it") from None
        inputs = self.session.get_inputs()
        self.input_names = tuple(i.name for i in inputs)
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.input_dtypes = {i.name: _NP.get(i.type, np.float32) for i in inputs}
        self.providers = tuple(self.session.get_providers())
        # On the CUDA provider with CuPy present, IO binding keeps outputs on the GPU (CuPy arrays).
        self.io_binding = self.providers[:1] == ("CUDAExecutionProvider",) and find_spec("cupy") is not None

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.io_binding:
            return self._run_bound(feeds)
        cast = {name: np.ascontiguousarray(to_host(feeds[name]), dtype=self.input_dtypes[name]) for name in self.input_names}
        outputs = self.session.run(None, cast)
        return {name: np.asarray(out, dtype=np.float32) if out.dtype == np.float16 else out for name, out in zip(self.output_names, outputs)}


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


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / layout.MANIFEST
    if not path.is_file():
        raise BundleError(f"no {layout.MANIFEST} in {bundle}: create the bundle with lr-export --out {bundle}")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); re-run lr-export --out {bundle}") from None
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > layout.FORMAT_VERSION:
        raise BundleError(
            f"bundle {bundle} has format version {version}; this lredit reads up to {layout.FORMAT_VERSION}: "
            "upgrade lredit or re-export the bundle with this version"
        )
    if not manifest.get("complete"):
        raise BundleError(f"bundle {bundle} is incomplete (an export was interrupted or failed parity): re-run lr-export --out {bundle}")
    return manifest


def verify_files(bundle: Path, files: Mapping[str, str]) -> None:
    for rel, digest in files.items():
        path = bundle / rel
        if not path.is_file():
            raise BundleError(f"bundle file missing: {path}; re-run lr-export --out {bundle}")
        if layout.sha256_file(path) != digest:
            raise BundleError(f"bundle file corrupt (sha256 mismatch): {path}; re-run lr-export --out {bundle}")


def _check_io(name: str, session: OrtSession, entry: dict) -> None:
    expected = [t["name"] for t in entry["inputs"]]
    if list(session.input_names) != expected:
        raise BundleError(f"graph {name}: inputs {list(session.input_names)} differ from the manifest's {expected}")
    for meta, spec in zip(session.session.get_inputs(), entry["inputs"]):
        for got, want in zip(meta.shape, spec["shape"]):
            if isinstance(want, int) and isinstance(got, int) and got != want:
                raise BundleError(f"graph {name}: input {meta.name} has shape {meta.shape}, the manifest says {spec['shape']}")


def load_ort_pipeline(bundle: Path, providers=None, config: EditConfig | None = None, verify: bool = True) -> EditPipeline:
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    require_graphs(bundle, manifest)
    sessions = {}
    for name in GRAPH_NAMES:
        entry = manifest["graphs"][name]
        if verify:
            verify_files(bundle, entry["files"])
        # The ONNX Runtime variant (attention fused) where export wrote one; same inputs and outputs.
        sessions[name] = OrtSession(bundle / entry.get("ort_file", entry["file"]), providers)
        _check_io(name, sessions[name], entry)
    assets = bundle_assets(bundle, manifest, _roi_pool_for(providers), verify)
    return BundlePipeline(sessions, assets, bundle_config(manifest, config), manifest)


def require_graphs(bundle: Path, manifest: dict) -> None:
    missing = [g for g in GRAPH_NAMES if g not in manifest["graphs"]]
    if missing:
        raise BundleError(f"bundle {bundle} lacks the graphs {missing}; export them with lr-export --graphs {' '.join(missing)}")


def bundle_assets(bundle: Path, manifest: dict, roi_pool, verify: bool = True) -> PipelineAssets:
    """Everything but the graphs, from the bundle: tokenizers, projection, scheduler tables."""
    if verify:
        verify_files(bundle, manifest["assets"])
    pipe = manifest["pipeline"]
    with np.load(bundle / "rgn_projection.npz") as proj:
        weight, bias = proj["weight"], proj["bias"]
    sched = manifest["scheduler"]
    return PipelineAssets(
        clip_tokenizer=ClipTokenizer.from_folder(bundle / "tokenizer" / "clip"),
        sd_tokenizer=ClipTokenizer.from_folder(bundle / "tokenizer" / "sd"),
        projection_weight=weight,
        projection_bias=bias,
        make_scheduler=lambda name: make_scheduler(name, sched["config"], sched["alphas_cumprod"]),
        random_weights=bool(manifest["models"].get("random_weights")),
        sources=dict(manifest["models"].get("families", {})),
        latent_channels=int(pipe["latent_channels"]),
        vae_scale_factor=int(pipe["vae_scale_factor"]),
        clip_image_size=int(pipe["clip_image_size"]),
        roi_pool=roi_pool,
    )


def _roi_pool_for(providers) -> object:
    """The fused CUDA kernel when the graphs run on the GPU, the numpy reference otherwise."""
    from lredit.kernels.loader import roi_pooler

    return roi_pooler(prefer_gpu="CUDAExecutionProvider" in (providers or ()))


def bundle_config(manifest: dict, config: EditConfig | None = None) -> EditConfig:
    """`config` with the graph geometry the bundle was exported for."""
    pipe = manifest["pipeline"]
    return (config or EditConfig()).replace(
        working_size=pipe["working_size"],
        dino_size=pipe["dino_size"],
        half_sizes=tuple(pipe["half_sizes"]),
        roi_size=pipe["roi_size"],
        proj_channels=pipe["proj_channels"],
    )


BUNDLE_GEOMETRY = ("working_size", "dino_size", "half_sizes", "roi_size", "proj_channels")


def check_bundle_geometry(bundle_cfg: EditConfig, requested: dict) -> None:
    """A requested setting the bundle's graphs were not exported for is an error, never ignored."""
    for name in BUNDLE_GEOMETRY:
        if name in requested and requested[name] != getattr(bundle_cfg, name):
            raise InputError(
                f"{name}={requested[name]!r}: this bundle was exported for {name}={getattr(bundle_cfg, name)!r}; "
                f"re-export with lr-export (e.g. --working-size) or use --backend torch without --bundle"
            )


class BundlePipeline(EditPipeline):
    """An EditPipeline whose graph geometry is fixed by the bundle it was exported as."""

    def __init__(self, sessions, assets, config, manifest):
        super().__init__(sessions, assets, config)
        self.manifest = manifest

    @property
    def max_unet_rows(self) -> int:
        return int(self.manifest["graphs"]["unet"]["dynamic_axes"]["batch"]["max"])

    def check_overrides(self, overrides) -> None:
        check_bundle_geometry(self.config, overrides)
        limit = int(self.manifest["pipeline"].get("max_candidates", 16))
        if overrides.get("anchors", self.config.anchors) > limit:
            raise InputError(f"anchors={overrides.get('anchors', self.config.anchors)}: this bundle's graphs take at most {limit} candidates")
