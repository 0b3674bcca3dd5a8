"""run_bench: every (backend, K, steps) through the one timing loop, into one JSON document."""

from __future__ import annotations

import gc
import json
import logging
import re
from pathlib import Path
from typing import Callable

from PIL import Image

from lredit.config import Backend
from lredit.errors import BackendUnavailableError, InputError, LreditError

from . import record
from .backends import bench_image, load_models, make_runner
from .config import AUTHORS, BUNDLE_BACKENDS, BenchConfig, engine_backend_name
from .timing import measure

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
    from lredit.engine.images import load_image

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


def _measure_backend(runner, cfg: BenchConfig, image, on_run) -> list[dict]:
    """Every (K, steps) point of one backend through the timing loop."""
    records = []
    for k in cfg.anchors:
        for n in cfg.steps:
            base = record.base_record(cfg, runner.name, runner.precision, k, n)
            if runner.name == "authors" and cfg.authors_iterations:
                base["note"] = (f"authors: {cfg.authors_iterations} extra inpaint + rank passes per edit, "
                                "as their README's per-image loop")
            progress = (lambda phase, i: on_run(f"{runner.name} K={k} steps={n} {phase} {i}")) if on_run else None
            try:
                m = measure(lambda: runner.run(image, cfg.prompt, k, n), runs=cfg.runs, warmup=cfg.warmup, on_run=progress)
            except LreditError as exc:
                records.append(record.failed_record(base, "failed", f"{type(exc).__name__}: {exc}"))
                log.error("%s K=%d steps=%d failed: %s", runner.name, k, n, exc)
                continue
            records.append(record.ok_record(base, m))
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
    needs_models = any(b in (AUTHORS, engine_backend_name(Backend.TORCH)) for b in cfg.backends)
    models = load_models(cfg, manifest) if needs_models else None
    records: list[dict] = []
    for backend in cfg.backends:
        try:
            runner = make_runner(backend, cfg, models, bundle)
        except BackendUnavailableError as exc:
            records += [record.failed_record(record.base_record(cfg, backend, cfg.torch_precision, k, n), "unavailable",
                                             str(exc))
                        for k in cfg.anchors for n in cfg.steps]
            log.warning("%s: unavailable: %s", backend, exc)
            continue
        records += _measure_backend(runner, cfg, image, on_run)
        del runner  # its pipeline goes before the next backend is measured (RSS peaks stay per backend)
        gc.collect()
    records += peers
    record.add_speedups(records)
    doc = record.document(cfg, command, records)
    record.validate(doc)
    return doc
