"""The bundle manifest, parsed once into frozen dataclasses.

Readers (the ONNX Runtime and TensorRT loaders, the editor, lr-bench) get a `Manifest` from
`read_manifest(bundle)` and use attributes; nothing else indexes the JSON. Parsing checks the
format version, that the export completed, and that every file the manifest names (graph files,
external weights, ONNX Runtime variants, TensorRT engines, assets) lies inside the bundle.

This module owns the format both ways: lr-export (export/exporter.py, export/trt_build.py) builds
a `Manifest` and writes it with `write_manifest`, so every field written is one a reader parses.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from . import bundle as layout
from .atomic import write_json_atomic
from .config import Precision
from .errors import BundleError


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: shape with axis symbols, and at the profile's opt point."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    opt_shape: tuple[int, ...]


@dataclass(frozen=True)
class EngineInfo:
    """A TensorRT engine of one graph and what it was built with."""

    file: str
    sha256: str
    tensorrt: str
    sm: str
    onnx_sha256: str | None = None


@dataclass(frozen=True)
class GraphEntry:
    name: str
    file: str
    """The standard ONNX graph (what TensorRT builds from)."""
    files: Mapping[str, str]
    """Every file of the graph (graph, external weights, variants) -> sha256."""
    precision: Precision
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    profile: Mapping[str, Mapping[str, tuple[int, ...]]]
    """TensorRT min/opt/max shape per input."""
    ort_file: str | None = None
    """The ONNX Runtime variant (attention fused), same inputs and outputs, where export wrote one."""
    engine: EngineInfo | None = None
    opset: int | None = None
    source_key: str | None = None
    """Digest of what the graph was exported from: an unchanged key lets lr-export reuse it."""
    fp32_ops: tuple[str, ...] = ()
    """fp16 graphs: the op types kept in fp32 (fragile under fp16)."""
    notes: str = ""
    """What the graph's inputs and outputs mean, from its spec (for people reading the manifest)."""
    dynamic_axes: tuple[str, ...] = ()
    """Axis symbols left dynamic at export (the rest of a shape's symbols are fixed sizes)."""

    @property
    def ort_graph(self) -> str:
        """The file ONNX Runtime loads: the fused variant where there is one."""
        return self.ort_file or self.file

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    def profile_lists(self) -> dict[str, dict[str, list[int]]]:
        """The profile as plain dicts and lists (what TensorRT's builder and JSON take)."""
        return {name: {point: list(shape) for point, shape in shapes.items()} for name, shapes in self.profile.items()}


@dataclass(frozen=True)
class PipelineInfo:
    """The geometry the graphs were exported for, and the model facts the runtime needs."""

    dino_size: int
    working_size: int
    half_sizes: tuple[int, ...]
    roi_size: int
    proj_channels: int
    latent_channels: int
    vae_scale_factor: int
    clip_image_size: int
    max_candidates: int = 16
    dino_patch: int | None = None
    editor: str = "inpaint"
    """The base editor the UNet makes: 'inpaint' (9 input channels: latent, mask, masked-image
    latent) or 'sd-blend' (a 4-channel text-to-image UNet, per-step latent blending)."""
    edit_defaults: Mapping[str, Any] = field(default_factory=dict)
    """EditConfig fields the models folder sets (its geometry.json: the shapes world's steps,
    paste_back, final_pick), the bundle's defaults under what a user passes."""


@dataclass(frozen=True)
class ModelsInfo:
    source: str
    """What lr-export --models was: a preset name or a models folder."""
    families: Mapping[str, str] = field(default_factory=dict)
    random_weights: bool = False


@dataclass(frozen=True)
class SchedulerInfo:
    config: Mapping[str, Any]
    """The model's scheduler config (diffusers' scheduler_config.json)."""
    alphas_cumprod: tuple[float, ...]
    tables: Mapping[str, Any] = field(default_factory=dict)
    """diffusers' timesteps (and sigmas) per variant and step count, for checks."""


@dataclass(frozen=True)
class Manifest:
    bundle: Path
    format_version: int
    complete: bool
    precision: Precision
    models: ModelsInfo
    graphs: Mapping[str, GraphEntry]
    assets: Mapping[str, str]
    """Tokenizer files and the projection -> sha256."""
    pipeline: PipelineInfo
    scheduler: SchedulerInfo
    lredit_version: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        """A file of this bundle (paths were checked to stay inside it when parsing)."""
        return layout.confined(self.bundle, rel)

    def rebuild_command(self) -> str:
        return f"lr-export --models {self.models.source} --precision {self.precision.value} --out {self.bundle} --trt"


def read_manifest(bundle: Path, *, require_complete: bool = True) -> Manifest:
    """Read and parse `bundle/manifest.json`; any problem is one BundleError saying what to do."""
    bundle = Path(bundle)
    path = bundle / layout.MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} is not an lredit bundle (no {layout.MANIFEST}); create one with lr-export --out {bundle}")
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); re-run lr-export --out {bundle}") from None
    except RecursionError:
        raise BundleError(f"{path} is nested too deeply to be a manifest; re-run lr-export --out {bundle}") from None
    manifest = parse_manifest(data, bundle)
    if require_complete and not manifest.complete:
        raise BundleError(f"bundle {bundle} is incomplete (an export was interrupted or failed parity): "
                          f"re-run lr-export --out {bundle}")
    return manifest


def parse_manifest(data: Any, bundle: Path) -> Manifest:
    """The typed manifest of `data` (the JSON), its file paths confined to `bundle`."""
    bundle = Path(bundle)
    if not isinstance(data, dict):
        raise BundleError(f"{bundle}/{layout.MANIFEST} holds a {type(data).__name__}, not a manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or version > layout.FORMAT_VERSION:
        raise BundleError(
            f"bundle {bundle} has format version {version}; this lredit reads up to {layout.FORMAT_VERSION}: "
            "upgrade lredit or re-export the bundle with this version"
        )
    try:
        manifest = Manifest(
            bundle=bundle,
            format_version=version,
            complete=bool(data.get("complete")),
            precision=Precision(data.get("precision", "fp32")),
            models=_models(data["models"]),
            graphs=_frozen({name: _graph(name, entry) for name, entry in data["graphs"].items()}),
            assets=_frozen({str(k): _text(v) for k, v in dict(data.get("assets", {})).items()}),
            pipeline=_pipeline(data["pipeline"]),
            scheduler=_scheduler(data["scheduler"]),
            lredit_version=str(data.get("lredit_version", "")),
            versions=_frozen(dict(data.get("versions", {}))),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"bundle {bundle}: malformed manifest ({type(exc).__name__}: {exc}); "
                          f"re-run lr-export --out {bundle}") from None
    for rel in _named_files(manifest):
        layout.confined(bundle, rel)
    return manifest


def _named_files(manifest: Manifest) -> list[str]:
    names = list(manifest.assets)
    for entry in manifest.graphs.values():
        names += [entry.file, *entry.files]
        if entry.ort_file:
            names.append(entry.ort_file)
        if entry.engine:
            names.append(entry.engine.file)
    return names


def _text(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value


def _int(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r:.40}")
    return value


def _dim(value) -> int | str:
    """A shape entry: a size or an axis symbol."""
    return value if isinstance(value, str) else _int(value)


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(mapping)


def _tensor(row: dict) -> TensorInfo:
    return TensorInfo(
        name=str(row["name"]),
        dtype=str(row.get("dtype", "float32")),
        shape=tuple(_dim(d) for d in row["shape"]),
        opt_shape=tuple(int(d) for d in row.get("opt_shape", ())),
    )


def graph_entry(name: str, entry: dict) -> GraphEntry:
    """One graph's typed entry from its JSON (what the exporter writes, or an old manifest held)."""
    return _graph(name, entry)


def _graph(name: str, entry: dict) -> GraphEntry:
    engine = entry.get("engine")
    return GraphEntry(
        name=name,
        file=str(entry["file"]),
        files=_frozen({str(k): _text(v) for k, v in entry["files"].items()}),
        precision=Precision(entry.get("precision", "fp32")),
        inputs=tuple(_tensor(t) for t in entry["inputs"]),
        outputs=tuple(_tensor(t) for t in entry["outputs"]),
        profile=_frozen({str(k): _frozen({str(p): tuple(_int(d) for d in v) for p, v in shapes.items()})
                         for k, shapes in entry.get("profile", {}).items()}),
        ort_file=entry.get("ort_file"),
        engine=EngineInfo(
            file=str(engine["file"]),
            sha256=str(engine["sha256"]),
            tensorrt=str(engine["tensorrt"]),
            sm=str(engine["sm"]),
            onnx_sha256=engine.get("onnx_sha256"),
        ) if engine else None,
        opset=entry.get("opset"),
        source_key=entry.get("source_key"),
        fp32_ops=tuple(str(op) for op in entry.get("fp32_ops", ())),
        notes=str(entry.get("notes", "")),
        dynamic_axes=tuple(str(a) for a in entry.get("dynamic_axes", {})),
    )


def _pipeline(pipe: dict) -> PipelineInfo:
    return PipelineInfo(
        dino_size=int(pipe["dino_size"]),
        working_size=int(pipe["working_size"]),
        half_sizes=tuple(int(s) for s in pipe["half_sizes"]),
        roi_size=int(pipe["roi_size"]),
        proj_channels=int(pipe["proj_channels"]),
        latent_channels=int(pipe["latent_channels"]),
        vae_scale_factor=int(pipe["vae_scale_factor"]),
        clip_image_size=int(pipe["clip_image_size"]),
        max_candidates=int(pipe.get("max_candidates", 16)),
        dino_patch=pipe.get("dino_patch"),
        editor=_editor(pipe.get("editor", "inpaint")),
        edit_defaults=_frozen(dict(pipe.get("edit_defaults", {}))),
    )


EDITOR_KINDS = ("inpaint", "sd-blend")


def _editor(value) -> str:
    if value not in EDITOR_KINDS:
        raise ValueError(f"pipeline.editor is {value!r}, expected one of {EDITOR_KINDS}")
    return value


def _models(models: dict) -> ModelsInfo:
    return ModelsInfo(
        source=str(models["source"]),
        families=_frozen(dict(models.get("families", {}))),
        random_weights=bool(models.get("random_weights")),
    )


def _scheduler(sched: dict) -> SchedulerInfo:
    return SchedulerInfo(
        config=_frozen(dict(sched["config"])),
        alphas_cumprod=tuple(float(a) for a in sched["alphas_cumprod"]),
        tables=_frozen(dict(sched.get("tables", {}))),
    )


def scheduler_info(data: dict) -> SchedulerInfo:
    """The typed scheduler section from export's tables (export/scheduler_tables.py)."""
    return _scheduler(data)


# -- the writer ------------------------------------------------------------------------------
def write_manifest(manifest: Manifest) -> Path:
    """Write `manifest` to its bundle's manifest.json (atomically); returns the path."""
    path = manifest.bundle / layout.MANIFEST
    write_json_atomic(path, manifest_data(manifest))
    return path


def manifest_data(manifest: Manifest) -> dict:
    """The JSON form of `manifest`: what parse_manifest reads back into an equal Manifest."""
    data = _plain(manifest)
    del data["bundle"]  # where the manifest lies, not what it says
    data["graphs"] = {name: _graph_data(entry) for name, entry in manifest.graphs.items()}
    return data


def mark_incomplete(bundle: Path, data: dict) -> None:
    """Rewrite an existing manifest's JSON with complete=False (an export into it has begun)."""
    write_json_atomic(Path(bundle) / layout.MANIFEST, {**data, "complete": False})


def _graph_data(entry: GraphEntry) -> dict:
    data = _plain(entry)
    del data["name"]  # the key it is stored under
    return {k: v for k, v in data.items() if not (k in ("ort_file", "engine") and v is None)}


def _plain(value):
    """JSON-ready copy: dataclasses and mappings -> dicts, tuples -> lists, enums -> values."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value
