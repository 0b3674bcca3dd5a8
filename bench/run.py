"""run_bench: every (backend, K, steps) through the one timing loop, into one JSON document."""

from __future__ import annotations

import gc
import json
import logging
import re
from pathlib import Path
from typing import Callable

from PIL import Image

from lredit.errors import InputError

from . import record
from .backends import bench_image, load_models
from .config import BUNDLE_BACKENDS, BenchConfig
from .isolated import NEEDS_TORCH_MODELS, measure_backend, measure_in_child

log = logging.getLogger(__name__)


def ensure_bundle(cfg: BenchConfig) -> Path:
    """cfg.bundle, else an fp32 bundle of cfg.models exported into the workdir (reused when unchanged)."""
    if cfg.bundle is not None:
        return Path(cfg.bundle)
    from lredit.export.exporter import ExportConfig, run_export
    from lredit.export.specs import ExportSettings
    from lredit.graphs import PIPELINE_GRAPHS

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(cfg.models)).strip("_")
    out = Path(cfg.workdir) / f"bundle-{slug}-ws{cfg.working_size}"
    run_export(ExportConfig(out=out, models=str(cfg.models), graphs=PIPELINE_GRAPHS,
                            settings=ExportSettings(working_size=cfg.working_size)))
    return out


def _image(cfg: BenchConfig) -> Image.Image:
    from lredit.engine.ops.images import load_image

    return load_image(cfg.image) if cfg.image else Image.fromarray(bench_image())


def load_peers(paths) -> list[dict]:
    """Records from peer scripts (their own venvs), validated like ours."""
    import jsonschema

    records = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
            record.validate(doc)
        except (OSError, ValueError) as exc:
            raise InputError(f"--peer {path}: not an lr-bench document ({exc})") from None
        except jsonschema.ValidationError as exc:
            raise InputError(f"--peer {path}: does not follow bench/record.schema.json: {exc.message}") from None
        records += doc["records"]
    return records


def run_bench(cfg: BenchConfig, command: str, on_run: Callable[[str], None] | None = None) -> dict:
    cfg = cfg.validated()
    peers = load_peers(cfg.peers)  # refuse a bad peer file before minutes of measuring
    image = _image(cfg)
    wants_bundle = any(b in BUNDLE_BACKENDS for b in cfg.backends)
    bundle = ensure_bundle(cfg) if wants_bundle else None
    manifest = None
    if cfg.models is None:
        from lredit.manifest import read_manifest

        manifest = read_manifest(bundle)
    # In-process only: the backends share one set of torch models (and each other's memory).
    models = load_models(cfg, manifest) if not cfg.isolate and any(b in NEEDS_TORCH_MODELS for b in cfg.backends) else None
    records: list[dict] = []
    for backend in cfg.backends:
        if cfg.isolate:
            records += measure_in_child(backend, cfg, bundle, image, on_run)
        else:
            records += measure_backend(backend, cfg, bundle, manifest, image, on_run, models=models, isolation="shared")
            gc.collect()  # its pipeline goes before the next backend is measured
    records += peers
    record.add_speedups(records)
    doc = record.document(cfg, command, records)
    record.validate(doc)
    return doc
