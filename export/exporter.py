"""lr-export's library function: models -> bundle (ONNX graphs, manifest, parity report).

Idempotent: a graph whose source key (spec, settings, precision, opset, weights) and file hashes
are unchanged is reused. An export in progress leaves the manifest marked incomplete; the
runtime refuses such a bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import lredit
from lredit import bundle as layout
from lredit.atomic import write_bytes_atomic, write_json_atomic
from lredit.config import WORKING_SIZE_RULE, Precision, working_size_ok
from lredit.errors import ExportError
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import Manifest, ModelsInfo, PipelineInfo, graph_entry, manifest_data, mark_incomplete, scheduler_info, write_manifest
from lredit.rgn_checkpoint import save_rgn
from lredit.versions import versions

from .models import ModelSources, load_models
from .onnx_export import check_parity, export_onnx
from .ort_fusion import ort_variant_name, write_ort_variant
from .rgn import rgn_params
from .scheduler_tables import scheduler_tables
from .specs import SPECS, ExportSettings
from .weights_audit import reference_shared_weights

log = logging.getLogger(__name__)

SUPPORTED_OPSETS = (17, 18)
"""Opsets the legacy exporter is run at: the attention fusion matches opset 17/18 graphs; the
dynamo exporter would need >= 18 and below 17 ops such as LayerNormalization are missing."""

__all__ = ["ExportConfig", "ExportError", "Precision", "run_export"]

@dataclass(frozen=True)
class ExportConfig:
    out: Path
    models: str = "tiny"
    """'tiny', 'full-random' or a models folder (see lr-edit --models)."""
    precision: Precision = Precision.FP32
    """fp16 halves size and roughly doubles GPU speed; fragile ops stay fp32 (see manifest)."""
    graphs: tuple[str, ...] = PIPELINE_GRAPHS
    """The graphs an edit runs; add 'rgn_roi' (lredit.graphs.OPTIONAL_GRAPHS) on request."""
    opset: int = 17
    settings: ExportSettings = field(default_factory=ExportSettings)
    parity_seed: int = 1234
    trt: bool = False


def _weights_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _source_key(name: str, module: torch.nn.Module, cfg: ExportConfig) -> str:
    spec = SPECS[name]
    desc = json.dumps(
        {
            "spec": repr((spec.inputs, spec.outputs, spec.axes, spec.fp16, spec.fp16_keep_fp32, spec.ort_attention)),
            "settings": asdict(cfg.settings),
            "precision": cfg.precision.value,
            "opset": cfg.opset,
            "weights": _weights_digest(module),
            "lredit": lredit.__version__,
            "storage": _storage(name, cfg),
        },
        sort_keys=True,
    )
    return hashlib.sha256(desc.encode()).hexdigest()


def _with_variant(name: str, cfg: ExportConfig) -> bool:
    """Whether `name` gets an attention-fused ONNX Runtime variant sharing its weights file.
    fp32 only: ONNX Runtime's CPU MultiHeadAttention is fp32, and fp16 bundles are for GPUs."""
    return SPECS[name].ort_attention and cfg.precision is Precision.FP32


def _is_donor(name: str) -> bool:
    """Another graph's spec shares this graph's weights file."""
    return any(spec.shares_weights_with == name for spec in SPECS.values())


def _storage(name: str, cfg: ExportConfig) -> str:
    """How a graph stores its weights (part of its source key: a change re-exports it)."""
    donor = SPECS[name].shares_weights_with
    if donor in cfg.graphs:
        return f"references {donor}'s weights file"
    if _with_variant(name, cfg) or _is_donor(name):
        return "external weights file, shared"
    return "in the graph, or external past 1 GB"


def run_export(cfg: ExportConfig, on_graph: Callable[[str, str], None] | None = None) -> dict:
    """Export every requested graph into cfg.out; returns the manifest. `on_graph(name, status)`
    reports progress ('exported', 'reused', 'rebuilt: ...')."""
    check_export_config(cfg)
    out = Path(cfg.out)
    created = not out.exists()
    try:
        return _export_all(cfg, out, on_graph)
    except BaseException:
        if created and not (out / layout.MANIFEST).exists():  # leave no empty folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def check_export_config(cfg: ExportConfig) -> None:
    """Everything checkable before a model loads: graphs, opset, working size, --out."""
    unknown = [g for g in cfg.graphs if g not in SPECS]
    if unknown:
        raise ExportError(f"unknown graphs {unknown}; choose from {sorted(SPECS)}")
    if cfg.opset not in SUPPORTED_OPSETS:
        raise ExportError(f"--opset {cfg.opset} is not supported; the exporter writes opset {' or '.join(map(str, SUPPORTED_OPSETS))}")
    if not working_size_ok(cfg.settings.working_size):
        raise ExportError(f"--working-size {cfg.settings.working_size!r}: expected {WORKING_SIZE_RULE} (what lr-edit runs)")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder; name a new or existing bundle folder")


def _export_all(cfg: ExportConfig, out: Path, on_graph) -> dict:
    old = layout.read_manifest_data(out)
    if out.exists() and any(out.iterdir()) and old is None:
        raise ExportError(f"--out {out} is a non-empty folder without {layout.MANIFEST}; refusing to write into it")
    s = cfg.settings
    models = load_models(ModelSources.parse(cfg.models), sizes=s.sizes, channels=s.channels, roi_size=s.roi_size)
    if old is not None:
        mark_incomplete(out, old)
    started = time.perf_counter()
    graphs, parity, failures = {}, {}, []
    old_parity = _read_parity(out)
    staging = Path(tempfile.mkdtemp(dir=_mkdir(out), prefix=".staging-"))
    try:
        # A graph sharing another's weights file comes after it (stable: the given order otherwise).
        for name in sorted(cfg.graphs, key=lambda g: SPECS[g].shares_weights_with in cfg.graphs):
            old_entry = (old or {}).get("graphs", {}).get(name)
            entry, report, status = _export_one(name, models, cfg, out, staging, old_entry, old_parity.get(name), done=graphs)
            graphs[name], parity[name] = entry, report
            failures += [f"{name}.{o}: {_failure(r)}" for o, r in report.items() if not r["ok"]]
            if on_graph:
                on_graph(name, status)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    extra_files = _write_assets(models, out)
    write_json_atomic(out / layout.PARITY, parity)
    manifest = _manifest(cfg, models, graphs, extra_files, complete=not failures)
    write_manifest(manifest)
    log.info("exported %s in %.1f s", out, time.perf_counter() - started)
    if failures:
        raise ExportError(f"parity check failed for {len(failures)} output(s): " + "; ".join(failures))
    return manifest_data(manifest)


def _failure(report: dict) -> str:
    if "error" in report:
        return report["error"]
    if not report["finite"]:
        return "NaN/Inf in the ONNX output (fp16 overflow?)"
    return f"max abs {report['max_abs']:.3g} exceeds atol {report['atol']:.1g} + rtol {report['rtol']:.1g}"


def _mkdir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create bundle folder {path}: {exc.strerror or exc}") from None
    return path


def _read_parity(out: Path) -> dict:
    try:
        return json.loads((out / layout.PARITY).read_text())
    except (OSError, ValueError):
        return {}


def _export_one(name, models, cfg: ExportConfig, out: Path, staging: Path, old_entry, old_report, done: dict):
    spec = SPECS[name]
    module = spec.wrap(models, cfg.settings)
    sizes = spec.static_sizes(models, cfg.settings)
    key = _source_key(name, module, cfg)
    if old_entry and old_entry.get("source_key") == key and old_report:
        if layout.files_intact(out, old_entry["files"]):
            return old_entry, old_report, "reused (unchanged)"
        status = "rebuilt (a file was missing or its sha256 did not match)"
    else:
        status = "exported"
    rel = layout.onnx_name(name)
    with_variant = _with_variant(name, cfg)
    written = export_onnx(spec, module, sizes, staging / rel, cfg.precision.value, cfg.opset,
                          external_weights=with_variant or _is_donor(name))
    report = check_parity(spec, module, sizes, staging / rel, cfg.precision.value, cfg.parity_seed)
    ort_file = None
    if with_variant:
        variant = ort_variant_name(rel)
        if write_ort_variant(staging / rel, staging / variant):
            fused = check_parity(spec, module, sizes, staging / variant, cfg.precision.value, cfg.parity_seed)
            report.update({f"{name} [ort attention]": row for name, row in fused.items()})
            written = [*written, staging / variant]
            ort_file = variant
    files = {}
    (out / "onnx").mkdir(exist_ok=True)
    for path in written:
        final = out / "onnx" / path.name
        path.replace(final)
        files[f"onnx/{path.name}"] = layout.sha256_file(final)
    files.update(_share_donor_weights(spec, out, rel, done))
    precision = cfg.precision.value if spec.fp16 else "fp32"
    entry = {
        "file": rel,
        "files": files,
        "source_key": key,
        "precision": precision,
        "fp32_ops": list(spec.fp16_keep_fp32) if precision == "fp16" else [],
        "notes": spec.notes,
        **({"ort_file": ort_file} if ort_file else {}),
        "opset": cfg.opset,
        "profile": {k: {p: list(v) for p, v in prof.items()} for k, prof in spec.profile(sizes).items()},
        **spec.table(sizes),
    }
    return entry, report, status


def _share_donor_weights(spec, out: Path, rel: str, done: dict) -> dict[str, str]:
    """Point the graph at `rel` to its donor's weights file where it holds the same tensors;
    returns the file entries to add (the donor's data file, the rewritten graph's new sha256)."""
    donor = done.get(spec.shares_weights_with)
    if donor is None:
        return {}
    data = [f for f in donor["files"] if f.endswith(".data")]
    if not data or not reference_shared_weights(out / rel, out / donor["file"]):
        return {}
    log.info("%s: shares %s's weights file %s", spec.name, spec.shares_weights_with, data[0])
    return {rel: layout.sha256_file(out / rel), data[0]: donor["files"][data[0]]}


def _write_assets(models, out: Path) -> dict[str, str]:
    """Tokenizer files, the projection and the RGN weights; returns {relative path: sha256}."""
    paths = [*models.clip_tokenizer.save(out / layout.TOKENIZERS["clip"]), *models.sd_tokenizer.save(out / layout.TOKENIZERS["sd"])]
    weight, bias = models.region_net.projection_arrays()
    buffer = io.BytesIO()
    np.savez(buffer, weight=weight, bias=bias)
    write_bytes_atomic(out / layout.PROJECTION, buffer.getvalue())
    # The whole RGN (head + projection) under the authors' key names: the runtime's numpy RGN
    # runs and learns from it without torch.
    save_rgn(out / layout.RGN_WEIGHTS, rgn_params(models.region_net), {"source": str(models.sources.get("rgn", ""))})
    paths += [out / layout.PROJECTION, out / layout.RGN_WEIGHTS]
    return {path.relative_to(out).as_posix(): layout.sha256_file(path) for path in paths}


def _manifest(cfg: ExportConfig, models, graphs: dict, assets: dict, *, complete: bool) -> Manifest:
    s = cfg.settings
    return Manifest(
        bundle=Path(cfg.out),
        format_version=layout.FORMAT_VERSION,
        complete=complete,
        precision=cfg.precision,
        models=ModelsInfo(source=cfg.models, families=dict(models.sources), random_weights=bool(models.random_weights)),
        graphs={name: graph_entry(name, entry) for name, entry in graphs.items()},
        assets=dict(assets),
        pipeline=PipelineInfo(
            dino_size=s.dino_size,
            working_size=s.working_size,
            half_sizes=tuple(s.half_sizes),
            roi_size=s.roi_size,
            proj_channels=s.channels,
            latent_channels=int(models.vae.config.latent_channels),
            vae_scale_factor=int(models.vae_scale_factor),
            clip_image_size=int(models.clip.config.vision_config.image_size),
            max_candidates=s.max_candidates,
            dino_patch=int(models.dino.config.patch_size),
            editor="inpaint" if models.unet.config.in_channels != models.unet.config.out_channels else "sd-blend",
            edit_defaults=_edit_defaults(cfg.models),
        ),
        scheduler=scheduler_info(scheduler_tables(models.scheduler_config)),
        lredit_version=lredit.__version__,
        versions=versions(),
    )


def _edit_defaults(models: str) -> dict:
    """The EditConfig fields a models folder's geometry.json sets besides the graphs' geometry
    (the shapes world's steps, paste_back, final_pick): lr-edit --bundle applies them as defaults."""
    from lredit.config import EDIT_FIELDS

    from .models import ModelSources
    from .specs import GRAPH_GEOMETRY

    known = EDIT_FIELDS - set(GRAPH_GEOMETRY)
    return {k: v for k, v in ModelSources.parse(models).geometry().items() if k in known}
