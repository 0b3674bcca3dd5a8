"""Write trained world models into the shipped folder: float32 tensors stored as float16
(the loaders build float32 modules and upcast), every file's sha256 in SHA256SUMS, and
MANIFEST.json with the command that made them and the figures measured at training."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lredit.bundle import sha256_file as sha256

log = logging.getLogger(__name__)

SUMS, MANIFEST = "SHA256SUMS", "MANIFEST.json"


def half_copy(source: Path, dest: Path) -> None:
    """A safetensors file with its float32 tensors as float16."""
    tensors = load_file(source)
    save_file({k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in tensors.items()}, dest)


def ship(models: Path, dest: Path, *, command: str, metrics: dict | None = None, notes: str = "") -> dict[str, str]:
    """Copy `models` to `dest` (replacing its model files), fp16; returns {relative path: sha256}."""
    models, dest = Path(models), Path(dest)
    for old in (dest / name for name in ("dino", "clip", "sd", "judge")):
        if old.is_dir():
            shutil.rmtree(old)
    sums = {}
    for source in sorted(p for p in models.rglob("*") if p.is_file()):
        relative = source.relative_to(models)
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".safetensors":
            half_copy(source, target)
        elif source.name == "config.json" and "_name_or_path" in (config := json.loads(source.read_text())):
            del config["_name_or_path"]  # where the trainer loaded it from: a path on its machine
            target.write_text(json.dumps(config, indent=2) + "\n")
        else:
            shutil.copyfile(source, target)
        sums[relative.as_posix()] = sha256(target)
    (dest / SUMS).write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    manifest = {"command": command, "notes": notes, "precision": "float16 tensors (float32 at load)",
                "metrics": metrics or {}, "files": sums}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum((dest / n).stat().st_size for n in sums)
    log.info("shipped %d files, %.1f MB, to %s", len(sums), total / 1e6, dest)
    return sums


def verify(folder: Path) -> list[str]:
    """Names of the files whose sha256 differs from SHA256SUMS (empty when all match)."""
    folder = Path(folder)
    bad = []
    for line in (folder / SUMS).read_text().splitlines():
        digest, name = line.split("  ", 1)
        if not (folder / name).is_file() or sha256(folder / name) != digest:
            bad.append(name)
    return bad
