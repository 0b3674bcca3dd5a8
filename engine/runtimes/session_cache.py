"""A cache of ONNX Runtime's optimised graphs, so that a second open of a bundle skips graph
optimisation.

ONNX Runtime optimises every graph when it creates a session. At the highest level
(ORT_ENABLE_ALL) the CPU provider also rewrites convolutions into its blocked NCHWc layout and
copies their weights; on the full-size UNet that is most of the session's creation time. The first
open of a graph writes the optimised graph (`optimized_model_filepath`, weights in an external file
beside it) into the cache; later opens load it with optimisation off, and ONNX Runtime
memory-maps its external weights.

Entries are keyed by everything that shapes the optimised graph: the graph's files (their
sha256 from the manifest, and their size and mtime, so a file replaced in place is a new key), the
ONNX Runtime version, the providers, the session options, and the CPU (the NCHWc block size
follows its vector width). A changed key is another entry; a stale or corrupt entry (its
`entry.json` missing or unreadable, a file of another size, mtime or sha256, or a graph ONNX
Runtime refuses) is rebuilt with a log line.

Root: `LREDIT_SESSION_CACHE`, else `~/.cache/lredit/sessions`. Only the CPU provider is cached:
the GPU providers' optimised graphs have not been checked here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Mapping, Sequence

from lredit.atomic import file_mode, set_file_mode, write_json_atomic
from lredit.bundle import sha256_file

log = logging.getLogger(__name__)

MODEL = "model.onnx"
WEIGHTS = "model.onnx.data"
ENTRY = "entry.json"
CACHEABLE_PROVIDERS = ("CPUExecutionProvider",)


class CacheStatus(str, Enum):
    HIT = "hit"
    """Loaded the optimised graph from the cache; no optimisation ran."""
    BUILT = "built"
    """No entry for this key: optimised now and written to the cache."""
    REBUILT = "rebuilt"
    """The entry was corrupt or unreadable: optimised again and rewritten (logged)."""
    OFF = "off"
    """Not cached (a provider other than the CPU, or the cache disabled)."""


def default_root() -> Path:
    return Path(os.environ.get("LREDIT_SESSION_CACHE") or Path.home() / ".cache" / "lredit" / "sessions")


@cache
def cpu_identity() -> str:
    """The CPU model and a digest of its feature flags (the vector width decides the layouts)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = " ".join(sorted(fields.get("flags", "").split()))
    return f"{fields.get('model name', 'unknown cpu')} / flags {hashlib.sha256(flags.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class CacheKey:
    graph: str
    files: tuple[tuple[str, str, int, int], ...]
    """(relative path, sha256 from the manifest, size, mtime_ns) of each file of the graph."""
    onnxruntime: str
    providers: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    cpu: str

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def graph_key(graph: str, bundle: Path, files: Mapping[str, str], providers: Sequence[str],
              options: Mapping[str, str]) -> CacheKey:
    import onnxruntime as ort

    stamped = []
    for rel, digest in sorted(files.items()):
        st = (Path(bundle) / rel).stat()
        stamped.append((rel, digest, st.st_size, st.st_mtime_ns))
    return CacheKey(graph, tuple(stamped), ort.__version__, tuple(providers), tuple(sorted(options.items())), cpu_identity())


def _check_entry(folder: Path, key: CacheKey) -> str | None:
    """None when the entry is whole; else what is wrong with it."""
    try:
        entry = json.loads((folder / ENTRY).read_text())
    except (OSError, ValueError) as exc:
        return f"{ENTRY} unreadable ({exc.__class__.__name__})"
    if entry.get("key") != key.digest():
        return "its key does not match its folder"
    for name, want in entry.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} missing"
        st = path.stat()
        if st.st_size != want["size"] or st.st_mtime_ns != want["mtime_ns"]:
            return f"{name} changed (size or mtime)"
        if "sha256" in want and sha256_file(path) != want["sha256"]:
            return f"{name} corrupt (sha256)"
    return None


class SessionCache:
    """Opens ONNX Runtime sessions through the cache under `root` (None: the default root)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def folder(self, key: CacheKey) -> Path:
        return self.root / f"{key.graph}-{key.digest()[:24]}"

    @staticmethod
    def open_direct(path: Path, make_options, providers: Sequence[str]):
        """(session, CacheStatus.OFF): `path` opened without the cache."""
        import onnxruntime as ort

        return ort.InferenceSession(str(path), make_options(), providers=list(providers)), CacheStatus.OFF

    def open(self, path: Path, key: CacheKey | None, make_options, providers: Sequence[str]):
        """(session, CacheStatus). `make_options()` gives fresh SessionOptions; `key` None (or a
        provider that is not cached) opens `path` directly."""
        import onnxruntime as ort

        if key is None or tuple(providers)[:1] != CACHEABLE_PROVIDERS:
            return self.open_direct(path, make_options, providers)
        folder = self.folder(key)
        status = CacheStatus.BUILT
        if folder.exists():
            problem = _check_entry(folder, key)
            if problem is None:
                options = make_options()
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                try:
                    return ort.InferenceSession(str(folder / MODEL), options, providers=list(providers)), CacheStatus.HIT
                except Exception as exc:  # noqa: BLE001 - ORT's own exception types; the entry is rebuilt
                    problem = f"ONNX Runtime cannot load it ({str(exc).splitlines()[0][:200]})"
            log.warning("session cache entry %s for %s: %s; rebuilding it", folder, key.graph, problem)
            status = CacheStatus.REBUILT
        return self._build(path, key, folder, make_options, providers), status

    def _build(self, path: Path, key: CacheKey, folder: Path, make_options, providers):
        import onnxruntime as ort

        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{key.graph}-"))
        try:
            options = make_options()
            options.optimized_model_filepath = str(staging / MODEL)
            options.add_session_config_entry("session.optimized_model_external_initializers_file_name", WEIGHTS)
            options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
            session = ort.InferenceSession(str(path), options, providers=list(providers))
            written = [p for p in (staging / MODEL, staging / WEIGHTS) if p.exists()]
            set_file_mode(*written)
            files = {}
            for p in written:
                st = p.stat()
                files[p.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            files[MODEL]["sha256"] = sha256_file(staging / MODEL)  # the graph itself is small: hashed on every open
            write_json_atomic(staging / ENTRY, {"key": key.digest(), "describes": asdict(key), "files": files})
            mode = file_mode()
            os.chmod(staging, mode | (mode & 0o444) >> 2)  # mkdtemp made it 0700; a folder as the umask gives
            shutil.rmtree(folder, ignore_errors=True)
            try:
                os.replace(staging, folder)
            except OSError:  # another process put its entry there first: keep that one
                pass
            return session
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class GraphOpen:
    """How one graph was opened: wall time (file check + session), cache status, files hashed."""

    graph: str
    ms: float
    cache: CacheStatus
    hashed: int


@dataclass(frozen=True)
class OpenReport:
    """How a bundle was opened (Editor.from_bundle(...).pipeline.open_report)."""

    total_ms: float
    verify: str
    graphs: tuple[GraphOpen, ...]

    def cache_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for g in self.graphs:
            counts[g.cache.value] = counts.get(g.cache.value, 0) + 1
        return counts

    def summary(self) -> str:
        cache = ", ".join(f"{n} {status}" for status, n in sorted(self.cache_counts().items()))
        hashed = sum(g.hashed for g in self.graphs)
        return f"session cache: {cache}; files hashed: {hashed} (verify {self.verify})"
