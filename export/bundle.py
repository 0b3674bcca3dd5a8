"""Bundle layout and manifest: artifact paths come from here only.

BUNDLE/
  manifest.json          format version, graphs (files, sha256, I/O table, profile), pipeline
                         config, scheduler tables, sources, versions; "complete": true at the end
  parity.json            worst error per graph output against torch
  onnx/<graph>.onnx      (+ <graph>.onnx.data external weights when a graph passes 2 GB)
  tokenizer/{clip,sd}/   vocab.json, merges.txt, special_tokens_map.json
  rgn_projection.npz     the seeded 1x1 projection (weight [c, d], bias [c])
  rgn.safetensors        the RGN (anchor_net.* head + conv.* projection), for the numpy RGN
  trt/                   engines (named graph.precision.profile.trtX.smY.engine), timing.cache
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

MANIFEST = "manifest.json"
PARITY = "parity.json"
RGN_WEIGHTS = "rgn.safetensors"
FORMAT_VERSION = 1


def onnx_name(graph: str) -> str:
    return f"onnx/{graph}.onnx"


def engine_name(graph: str, precision: str, profile_key: str, trt_version: str, sm: str) -> str:
    return f"trt/{graph}.{precision}.{profile_key}.trt{trt_version}.{sm}.engine"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; outputs are for users and their tools to read
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def read_manifest(bundle: Path) -> dict | None:
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def files_intact(bundle: Path, files: dict[str, str]) -> bool:
    """Every listed file exists and has the recorded sha256."""
    for rel, digest in files.items():
        path = Path(bundle) / rel
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True
