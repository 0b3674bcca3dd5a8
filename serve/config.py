"""lr-serve's settings: where the bundle is, how requests are batched, and the limits that
protect the service. Frozen, validated once; the Serve config YAML's `args` map onto the same
fields (`ServeConfig.from_args`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lredit.config import Backend, ort_providers
from lredit.errors import InputError

BACKENDS = (Backend.ORT, Backend.TRT)
"""The service runs exported bundles: ONNX Runtime or TensorRT."""
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Limits:
    """Per-request and per-service limits. Each is named in the JSON error that enforces it."""

    max_upload_bytes: int = 20 * 1024 * 1024
    """Largest request body; larger uploads get 413 before the body is read."""
    max_pixels: int = 40_000_000
    """Largest decoded image (width x height), checked from the image header: 413."""
    max_side: int = 16_384
    """Longest image side, checked from the header: 413 (a 16 x 2,000,000 sliver is under max_pixels)."""
    max_aspect_ratio: float = 16.0
    """Longest over shortest side, checked from the header: 413. The edit covers the centre square."""
    max_anchors: int = 16
    """Most candidates one request may ask for (anchors = K): 400. At most the batch size."""
    max_steps: int = 100
    """Most denoising steps one request may ask for: 400. Cost is linear in steps."""
    request_timeout_s: float = 300.0
    """An edit not answered within this gets 504 (its work is cancelled where it has not started)."""
    max_queue: int = 64
    """Most requests an ingress replica holds for the editors at once (waiting or being edited);
    the next one gets 503 with Retry-After at once, it is never left hanging."""

    def problems(self) -> list[str]:
        out = []
        for name in ("max_upload_bytes", "max_pixels", "max_side", "max_anchors", "max_steps", "max_queue"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                out.append(f"{name}={value!r} (expected an integer >= 1)")
        if not (isinstance(self.max_aspect_ratio, (int, float)) and math.isfinite(self.max_aspect_ratio) and self.max_aspect_ratio >= 1):
            out.append(f"max_aspect_ratio={self.max_aspect_ratio!r} (expected a number >= 1)")
        if not (isinstance(self.request_timeout_s, (int, float)) and math.isfinite(self.request_timeout_s) and self.request_timeout_s > 0):
            out.append(f"request_timeout_s={self.request_timeout_s!r} (expected a number > 0)")
        return out


@dataclass(frozen=True)
class Batching:
    """How an editor replica gathers requests into one `edit_batch` call (Ray's @serve.batch)."""

    enabled: bool = True
    """Off: one request per call, one call at a time per replica (the baseline)."""
    max_candidates: int = 16
    """A batch closes when the candidates (sum of anchors) of its requests would pass this. The
    UNet runs 2 rows per candidate with guidance, in chunks of the bundle's row cap."""
    max_wait_ms: float = 20.0
    """How long the first request of a batch waits for others. Adds up to this much latency at
    low load; buys throughput at high load."""

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.max_candidates, int) or self.max_candidates < 1:
            out.append(f"max_candidates={self.max_candidates!r} (expected an integer >= 1)")
        if not (isinstance(self.max_wait_ms, (int, float)) and 0 <= self.max_wait_ms <= 60_000):
            out.append(f"max_wait_ms={self.max_wait_ms!r} (expected a number in 0..60000)")
        return out


@dataclass(frozen=True)
class ServeConfig:
    bundle: Path
    """An lr-export bundle; every node that runs an editor replica needs it at this path."""
    backend: Backend = Backend.ORT
    device: str = "cpu"
    """cuda: one editor replica per GPU (num_gpus=1), ONNX Runtime's CUDA provider or TensorRT."""
    replicas: int | None = 1
    """Editor replicas (fixed); None leaves the count to the Serve config YAML (autoscaling)."""
    replica_cpus: float = 1.0
    """CPUs Ray reserves for each editor replica."""
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    drain_timeout_s: float = 600.0
    """On SIGTERM, how long lr-serve waits for in-flight requests before it stops anyway."""

    def validated(self) -> "ServeConfig":
        problems = [*self.limits.problems(), *self.batching.problems()]
        if self.backend not in BACKENDS:
            problems.append(f"backend={self.backend!r} (expected one of {[b.value for b in BACKENDS]})")
        if self.device not in DEVICES:
            problems.append(f"device={self.device!r} (expected one of {DEVICES})")
        if self.backend == Backend.TRT and self.device != "cuda":
            problems.append("backend='trt' needs device='cuda'")
        if self.replicas is not None and (not isinstance(self.replicas, int) or self.replicas < 1):
            problems.append(f"replicas={self.replicas!r} (expected an integer >= 1)")
        if not self.replica_cpus >= 0:
            problems.append(f"replica_cpus={self.replica_cpus!r} (expected a number >= 0)")
        if self.batching.max_candidates < self.limits.max_anchors:
            problems.append(
                f"max_candidates={self.batching.max_candidates} is below max_anchors={self.limits.max_anchors}: "
                "a request with max_anchors candidates would never fit in a batch"
            )
        if problems:
            raise InputError("invalid lr-serve settings: " + "; ".join(problems))
        return self

    @property
    def providers(self) -> tuple[str, ...]:
        return ort_providers(self.device)

    @property
    def num_gpus(self) -> int:
        return 1 if self.device == "cuda" else 0

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "ServeConfig":
        """From a flat mapping (the Serve config YAML's `args`, lr-serve's flags): top-level
        fields, Limits fields and Batching fields side by side (batching as `batching`)."""
        args = dict(args)
        if "bundle" not in args:
            raise InputError("lr-serve settings need 'bundle' (an lr-export bundle folder)")
        groups = {"limits": Limits, "batching": Batching}
        parts: dict[str, dict] = {"limits": {}, "batching": {}}
        top: dict[str, Any] = {}
        names = {g: {f.name for f in dataclasses.fields(t)} for g, t in groups.items()}
        top_names = {f.name for f in dataclasses.fields(cls)} - set(groups)
        for key, value in args.items():
            if key in top_names:
                top[key] = value
            elif key in names["limits"]:
                parts["limits"][key] = value
            elif key == "max_candidates" or key == "max_wait_ms":
                parts["batching"][key] = value
            elif key == "batching":
                parts["batching"]["enabled"] = bool(value)
            else:
                known = sorted(top_names | names["limits"] | {"batching", "max_candidates", "max_wait_ms"})
                raise InputError(f"unknown lr-serve setting {key!r}; known: {known}")
        top["bundle"] = Path(top["bundle"])
        top["backend"] = Backend.parse(top.get("backend", Backend.ORT))
        top.setdefault("replicas", None)  # the YAML's deployment settings decide
        return cls(**top, limits=Limits(**parts["limits"]), batching=Batching(**parts["batching"])).validated()
