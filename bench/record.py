"""The lr-bench JSON document: one flat record per (backend, K, steps), each self-describing
(device, versions, precision, K, steps, resolution, scheduler), validated against
record.schema.json. Tables and charts (report.py) are formatters over this document only."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib import resources

from lredit.versions import versions

from .config import BenchConfig
from .timing import Measurement, summarize

SCHEMA_VERSION = 1
STAGES = ("preprocess", "dino", "anchors", "roi_rgn", "masks", "text", "vae_encode", "denoise", "vae_decode",
          "regions_score", "rank")


def load_schema() -> dict:
    return json.loads((resources.files("lredit.bench") / "record.schema.json").read_text())


def device_info(device: str) -> dict:
    if device.startswith("cuda"):
        try:
            import torch

            index = torch.device(device).index or 0
            return {"kind": "cuda", "name": torch.cuda.get_device_name(index),
                    "compute_capability": ".".join(map(str, torch.cuda.get_device_capability(index)))}
        except (ImportError, RuntimeError, AssertionError) as exc:  # no torch / no CUDA build / no device
            return {"kind": "cuda", "name": f"unknown ({exc})"}
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return {"kind": "cpu", "name": name, "cores": os.cpu_count()}


def base_record(cfg: BenchConfig, backend: str, precision: str, k: int, steps: int) -> dict:
    return {
        "backend": backend,
        "device": device_info(cfg.device),
        "versions": versions(),
        "models": cfg.models if cfg.models else f"bundle:{cfg.bundle}",
        "precision": precision,
        "anchors": k,
        "steps": steps,
        "resolution": cfg.working_size,
        "scheduler": cfg.scheduler,
        "runs": cfg.runs,
        "warmup": cfg.warmup,
        "clock": "perf_counter",
    }


def ok_record(base: dict, m: Measurement) -> dict:
    end_to_end = summarize(m.runs_ms)
    return {
        **base,
        "status": "ok",
        "end_to_end_ms": end_to_end,
        "stages_ms": m.stage_summary(),
        "warmup_ms": m.warmup_ms,
        "edits_per_minute": round(60000.0 / end_to_end["p50"], 3),
        "peak_rss_mb": round(m.peak_rss_bytes / 2**20, 1),
        "peak_device_mb": None if m.peak_device_bytes is None else round(m.peak_device_bytes / 2**20, 1),
        "speedup_vs_authors": None,
    }


def failed_record(base: dict, status: str, reason: str) -> dict:
    return {**base, "status": status, "reason": reason}


def add_speedups(records: list[dict]) -> None:
    """speedup_vs_authors = authors' p50 / this record's, same K and steps: end to end for whole
    edits, the 'inpaint' stage for inpainting-only records (scope 'inpaint', e.g. peers)."""
    authors = {(r["anchors"], r["steps"]): r for r in records if r["backend"] == "authors" and r["status"] == "ok"}
    for r in records:
        base = authors.get((r["anchors"], r["steps"]))
        if r["status"] != "ok" or base is None:
            continue
        if r.get("scope", "edit") == "inpaint":
            ratio = base["stages_ms"]["inpaint"]["p50"] / r["stages_ms"]["inpaint"]["p50"]
        else:
            ratio = base["end_to_end_ms"]["p50"] / r["end_to_end_ms"]["p50"]
        r["speedup_vs_authors"] = round(ratio, 3)


def document(cfg: BenchConfig, command: str, records: list[dict]) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "host": device_info(cfg.device),
        "records": records,
    }


def validate(doc: dict) -> None:
    """Raise jsonschema.ValidationError when `doc` does not follow record.schema.json."""
    import jsonschema

    jsonschema.validate(doc, load_schema())
