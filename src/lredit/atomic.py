"""Atomic file writes: readers never see half a file (temp file beside the target, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def file_mode() -> int:
    """The mode a new plain file gets under this process's umask (0o644 under the usual 022).

    Read from /proc (Linux), so the process umask is never changed, not even for a moment."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting it, then put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def set_file_mode(*paths: Path) -> None:
    """Give files written by libraries that create them 0600 (onnx's external data, mkstemp)
    the mode their siblings get from the umask."""
    mode = file_mode()
    for path in paths:
        os.chmod(path, mode)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; outputs are for users and their tools to read
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
