"""Bundle layout: artifact paths come from here only, and every path a manifest names is
confined to its bundle.

BUNDLE/
  manifest.json          format version, graphs (files, sha256, I/O table, profile), pipeline
                         config, scheduler tables, sources, versions; "complete": true at the end
  parity.json            worst error per graph output against torch
  onnx/<graph>.onnx      (+ <graph>.onnx.data external weights when a graph passes 2 GB,
                         + <graph>.ort.onnx, the ONNX Runtime variant with attention fused)
  tokenizer/{clip,sd}/   vocab.json, merges.txt, special_tokens_map.json
  rgn_projection.npz     the seeded 1x1 projection (weight [c, d], bias [c])
  rgn.safetensors        the RGN (anchor_net.* head + conv.* projection), for the numpy RGN
  trt/                   engines (named graph.precision.profile.trtX.smY.engine), timing.cache
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

from .errors import BundleError

MANIFEST = "manifest.json"
PARITY = "parity.json"
FORMAT_VERSION = 1
PROJECTION = "rgn_projection.npz"
RGN_WEIGHTS = "rgn.safetensors"
TIMING_CACHE = "trt/timing.cache"
TOKENIZERS = {"clip": "tokenizer/clip", "sd": "tokenizer/sd"}


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


def confined(bundle: Path, rel: str) -> Path:
    """`bundle / rel`, or a BundleError when `rel` is absolute, climbs out with '..', or resolves
    (through a symlink) to a place outside the bundle."""
    if not isinstance(rel, str) or not rel:
        raise BundleError(f"bundle {bundle}: a manifest file path is {rel!r}; expected a relative path")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or Path(rel).is_absolute() or ".." in pure.parts or "\\" in rel:
        raise BundleError(f"bundle {bundle}: the manifest names {rel!r}, which is not a path inside the bundle; "
                          "refusing to load it (re-export the bundle with lr-export)")
    root = Path(bundle).resolve()
    path = Path(bundle) / rel
    if not path.resolve().is_relative_to(root):
        raise BundleError(f"bundle {bundle}: {rel!r} resolves to {path.resolve()}, outside the bundle (a symlink?); "
                          "refusing to load it")
    return path


def read_manifest_data(bundle: Path) -> dict | None:
    """The raw manifest of a bundle being written (exporter), or None when there is none or it
    is unreadable. Readers of a finished bundle use lredit.manifest.read_manifest."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, RecursionError):
        return None


def files_intact(bundle: Path, files: dict[str, str]) -> bool:
    """Every listed file exists inside the bundle and has the recorded sha256."""
    for rel, digest in files.items():
        try:
            path = confined(bundle, rel)
        except BundleError:
            return False
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True
