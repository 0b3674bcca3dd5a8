"""Each backend measured in its own process, so that its memory figures are its own.

Measured in one process, every backend would inherit the heap, arenas and loaded models of the
backends before it. Here the lr-bench process exports the bundle (if asked) and then starts one
child per backend (multiprocessing 'spawn': a fresh interpreter, nothing inherited). The child
loads its models, measures every (K, steps) point through the one timing loop and sends its
records back with its process id, the load time, its lifetime peak RSS and its steady RSS.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queue_errors
import resource
import time
from pathlib import Path
from typing import Callable

from lredit.config import Backend
from lredit.errors import BackendUnavailableError, LreditError
from lredit.manifest import Manifest

from . import record
from .backends import load_models, make_runner
from .config import AUTHORS, TORCH_CUDA_VARIANTS, BenchConfig, engine_backend_name, region_overrides
from .timing import measure, rss_bytes

log = logging.getLogger(__name__)
NEEDS_TORCH_MODELS = (AUTHORS, engine_backend_name(Backend.TORCH), *TORCH_CUDA_VARIANTS)


def measure_points(runner, cfg: BenchConfig, image, on_run) -> list[dict]:
    """Every (K, steps) point of one backend through the timing loop."""
    records = []
    variants = (None,) if runner.name == AUTHORS else cfg.regions
    for k in cfg.anchors:
        for n in cfg.steps:
            for variant in variants:
                records.append(_measure_point(runner, cfg, image, k, n, variant, on_run))
    return records


def _measure_point(runner, cfg: BenchConfig, image, k: int, n: int, variant: str | None, on_run) -> dict:
    base = record.base_record(cfg, runner.name, runner.precision, k, n)
    if variant is not None:
        base["regions"] = variant
    if runner.name == AUTHORS and cfg.authors_iterations:
        base["note"] = (f"authors: {cfg.authors_iterations} extra inpaint + rank passes per edit, "
                        "as their README's per-image loop")
    label = runner.name + (f"/{variant}" if variant else "")
    progress = (lambda phase, i: on_run(f"{label} K={k} steps={n} {phase} {i}")) if on_run else None
    overrides = region_overrides(variant, cfg.pruning()) if variant else None
    runner.counters.clear()
    try:
        m = measure(lambda: runner.run(image, cfg.prompt, k, n, overrides), runs=cfg.runs, warmup=cfg.warmup, on_run=progress)
    except LreditError as exc:
        log.error("%s K=%d steps=%d failed: %s", label, k, n, exc)
        return record.failed_record(base, "failed", f"{type(exc).__name__}: {exc}")
    out = record.ok_record(base, m)
    if runner.counters.get("unet_rows") is not None:
        out["unet_rows"] = runner.counters["unet_rows"]
    return out


def unavailable(cfg: BenchConfig, backend: str, status: str, reason: str) -> list[dict]:
    return [record.failed_record(record.base_record(cfg, backend, cfg.torch_precision, k, n), status, reason)
            for k in cfg.anchors for n in cfg.steps]


def measure_backend(backend: str, cfg: BenchConfig, bundle: Path | None, manifest: Manifest | None, image,
                    on_run: Callable[[str], None] | None, models=None, isolation: str = "process") -> list[dict]:
    """Load `backend` (timed: load_ms), measure it, and stamp each record with this process."""
    start = time.perf_counter()
    try:
        if models is None and backend in NEEDS_TORCH_MODELS:
            models = load_models(cfg, manifest)
        runner = make_runner(backend, cfg, models, bundle)
    except BackendUnavailableError as exc:
        log.warning("%s: unavailable: %s", backend, exc)
        return [{**r, "pid": os.getpid(), "isolation": isolation} for r in unavailable(cfg, backend, "unavailable", str(exc))]
    load_ms = (time.perf_counter() - start) * 1000.0
    records = measure_points(runner, cfg, image, on_run)
    steady = rss_bytes()
    lifetime_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    for r in records:
        r.update(pid=os.getpid(), isolation=isolation)
        if r["status"] == "ok":
            r["load_ms"] = round(load_ms, 1)
            r["steady_rss_mb"] = round(steady / 2**20, 1)
            if isolation == "process":  # the process held only this backend: its whole-life peak is the backend's
                r["peak_rss_mb"] = round(max(lifetime_peak, r["peak_rss_mb"] * 2**20) / 2**20, 1)
    return records


def _child(backend, cfg, bundle, image, channel, log_level) -> None:
    logging.basicConfig(level=log_level, format="%(name)s: %(message)s")
    try:
        manifest = None
        if cfg.models is None:  # the bundle's own models (read here: the typed manifest does not pickle)
            from lredit.manifest import read_manifest

            manifest = read_manifest(bundle)
        records = measure_backend(backend, cfg, bundle, manifest, image, lambda what: channel.put(("progress", what)))
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which records it as a failed point
        channel.put(("error", f"{type(exc).__name__}: {exc}"))
        raise
    channel.put(("records", records))


def measure_in_child(backend: str, cfg: BenchConfig, bundle: Path | None, image,
                     on_run: Callable[[str], None] | None) -> list[dict]:
    """measure_backend in a fresh process; a child that dies (killed for memory, crashed) gives
    failed records naming its exit code."""
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue()
    child = ctx.Process(target=_child, name=f"lr-bench {backend}",
                        args=(backend, cfg, bundle, image, channel, logging.getLogger().level))
    child.start()
    records, error = None, None
    while records is None and error is None:
        try:
            kind, payload = channel.get(timeout=0.5)
        except queue_errors.Empty:
            if child.is_alive():
                continue
            try:  # it may have sent its last message just before exiting
                kind, payload = channel.get(timeout=2.0)
            except queue_errors.Empty:
                break
        if kind == "progress":
            if on_run:
                on_run(payload)
        elif kind == "records":
            records = payload
        else:
            error = payload
    child.join()
    if records is not None:
        return records
    reason = error or f"the process measuring {backend} exited with code {child.exitcode}" + (
        " (killed: out of memory?)" if child.exitcode == -9 else "")
    log.error("%s: %s", backend, reason)
    return unavailable(cfg, backend, "failed", reason)
