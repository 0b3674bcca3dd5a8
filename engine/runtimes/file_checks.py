"""Checking a bundle's files against the sha256 the manifest records, without hashing gigabytes
on every open.

- `Verify.FULL`: hash every file (`lr-edit --verify`, `Editor.from_bundle(verify=Verify.FULL)`).
- `Verify.STAMP` (the default): a file whose size and mtime match the stamp recorded when it was
  last hashed and found right is not hashed again; any other file is hashed (and stamped when
  right). Stamps live in this process (so a bundle is hashed at most once per process) and on
  disk under the session cache root (`verified/`), so a second process skips the hashing too. A
  file rewritten in place gets a new mtime and is hashed; a bit flipped on disk without a write
  is caught only by a full check.
- `Verify.OFF`: no check.
"""

from __future__ import annotations

import hashlib
import json
import threading
from enum import Enum
from pathlib import Path
from typing import Mapping

from lredit import bundle as layout
from lredit.atomic import write_json_atomic
from lredit.engine.runtimes.session_cache import default_root
from lredit.errors import BundleError
from lredit.manifest import Manifest


class Verify(str, Enum):
    FULL = "full"
    STAMP = "stamp"
    OFF = "off"

    @classmethod
    def of(cls, value: "bool | str | Verify") -> "Verify":
        """True -> STAMP, False -> OFF (the old boolean), else the named mode."""
        if isinstance(value, bool):
            return cls.STAMP if value else cls.OFF
        return cls(value)


_memo: dict[tuple[str, str], tuple[int, int, str]] = {}
_lock = threading.Lock()


def _stamp_file(root: Path, bundle: Path) -> Path:
    return root / "verified" / (hashlib.sha256(str(bundle.resolve()).encode()).hexdigest()[:24] + ".json")


def check_files(manifest: Manifest, files: Mapping[str, str], mode: Verify, root: Path | None = None) -> int:
    """Raise a BundleError for a missing file or one whose sha256 is not the manifest's; returns
    how many files were hashed (0 when every stamp matched)."""
    if mode is Verify.OFF:
        return 0
    bundle = manifest.bundle
    stamp_path = _stamp_file(Path(root) if root is not None else default_root(), bundle)
    try:
        on_disk = json.loads(stamp_path.read_text()) if mode is Verify.STAMP else {}
    except (OSError, ValueError):
        on_disk = {}
    hashed, fresh = 0, {}
    for rel, digest in files.items():
        path = manifest.path(rel)
        if not path.is_file():
            raise BundleError(f"bundle file missing: {path}; re-run lr-export --out {bundle}")
        st = path.stat()
        seen = (st.st_size, st.st_mtime_ns, digest)
        memo_key = (str(path.resolve()), digest)
        if mode is Verify.STAMP and (_memo.get(memo_key) == seen or tuple(on_disk.get(rel, ())) == seen):
            continue
        hashed += 1
        if layout.sha256_file(path) != digest:
            raise BundleError(f"bundle file corrupt (sha256 mismatch): {path}; re-run lr-export --out {bundle}")
        with _lock:
            _memo[memo_key] = seen
        fresh[rel] = list(seen)
    if fresh:
        _write_stamps(stamp_path, fresh)
    return hashed


def _write_stamps(path: Path, fresh: dict) -> None:
    with _lock:
        try:
            stamps = json.loads(path.read_text())
        except (OSError, ValueError):
            stamps = {}
        stamps.update(fresh)
        try:
            write_json_atomic(path, stamps)
        except OSError:  # a read-only cache costs a re-hash next time, nothing else
            pass
