"""BenchConfig: what one lr-bench run measures. Filled by the CLI, checked in one validator."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from lredit.config import Backend, EditConfig, Precision
from lredit.errors import InputError

AUTHORS = "authors"


def engine_backend_name(backend: Backend) -> str:
    """lr-bench's name of an engine backend: 'engine-' + lr-edit's --backend value."""
    return f"engine-{backend.value}"


TORCH_CUDA_VARIANTS = {
    engine_backend_name(Backend.TORCH_CUDA): {},
    f"{engine_backend_name(Backend.TORCH_CUDA)}-eager": {"cuda_graphs": False},
    f"{engine_backend_name(Backend.TORCH_CUDA)}-compile": {"compile": True},
}
"""The torch-CUDA path with its device's defaults (CUDA graphs on CUDA), without graph replay, and
with torch.compile: TorchEngineOptions switches by bench name, so each switch is measured."""


def engine_backend(name: str) -> Backend | None:
    """The engine Backend a bench name stands for (None for 'authors')."""
    if name in TORCH_CUDA_VARIANTS:
        return Backend.TORCH_CUDA
    return Backend(name.removeprefix("engine-")) if name.startswith("engine-") else None


_EDIT = EditConfig()  # the bench's defaults are the edit's

BACKEND_NAMES = (AUTHORS, *(engine_backend_name(b) for b in Backend if b is not Backend.TORCH_CUDA), *TORCH_CUDA_VARIANTS)
BUNDLE_BACKENDS = (engine_backend_name(Backend.ORT), engine_backend_name(Backend.TRT))
"""The backends that run an exported bundle."""
REGION_VARIANTS = ("rgn", "search", "search-noprune", "search-crop", "learn")


def region_overrides(variant: str, pruning: Mapping | None = None) -> dict:
    """EditConfig fields of one --regions variant (search-noprune = search without pruning;
    search-crop = pruned, its phases decoding latent windows, with the paste-back that needs);
    `pruning` (prune_fractions, prune_keep) applies to the pruned search variants."""
    if variant == "search-crop":
        fields = {"regions": "search", "prune": True, "prune_decode": "crop", "paste_back": True}
    else:
        fields = {"regions": variant.removesuffix("-noprune"), "prune": not variant.endswith("-noprune")}
    if fields["regions"] == "search" and fields["prune"]:
        fields.update(pruning or {})
    return fields


def default_workdir() -> Path:
    return Path.home() / ".cache" / "lredit" / "bench"


@dataclass(frozen=True)
class BenchConfig:
    models: str | None = "tiny"
    """tiny | full-random | a local folder; with --bundle only, the bundle's own models."""
    bundle: Path | None = None
    """An lr-export bundle for engine-ort / engine-trt; without one, lr-bench exports `models`
    into `workdir` (once: export is idempotent)."""
    backends: tuple[str, ...] = ("authors", "engine-torch", "engine-ort")
    anchors: tuple[int, ...] = (_EDIT.anchors,)
    """K values to sweep: cost grows with K (the UNet batch is 2K with guidance)."""
    steps: tuple[int, ...] = (25,)
    """Denoising step counts to sweep: the UNet runs once per step."""
    runs: int = 5
    """Timed runs per (backend, K, steps); percentiles over these."""
    warmup: int = 1
    """Untimed first runs (allocation, autotuning, caches), reported apart."""
    working_size: int = _EDIT.working_size
    scheduler: str = _EDIT.scheduler
    precision: str = Precision.FP32.value
    """fp16 applies to torch backends on CUDA (authors' setting); the bundle fixes its own."""
    device: str = "cpu"
    """Torch device for authors / engine-torch; 'cuda' also puts ORT on its CUDA provider."""
    authors_iterations: int = 0
    """Extra inpaint + rank passes per authors edit (their README's per-image loop: 10)."""
    regions: tuple[str, ...] = ("rgn",)
    """Region modes run by the engine backends, side by side (rgn = one pass, K inpaints; search =
    K x M pairs pruned; search-noprune; learn). The authors' way has one mode of its own."""
    prune_fractions: tuple[float, ...] | None = None
    """Pruned search variants: the schedule fractions (None: the edit's default)."""
    prune_keep: float | None = None
    """Pruned search variants: the share of sizes kept per phase (None: the edit's default)."""
    image: Path | None = None
    """Input image; default: a synthetic 320x320 image."""
    prompt: str = "a bowl of strawberries"
    seed: int = _EDIT.seed
    workdir: Path = field(default_factory=default_workdir)
    peers: tuple[Path, ...] = ()
    """JSON records written by peer scripts (bench/peer_optimum.sh) to set in the table."""
    json_out: Path | None = None
    markdown_out: Path | None = None
    plot_out: Path | None = None
    isolate: bool = True
    """Measure each backend in its own process (spawned: nothing inherited), so peak and steady
    RSS are that backend's own. False (--in-process) starts faster, but every backend then
    carries the memory of those measured before it, and the records say so (isolation 'shared')."""
    progress: bool = True
    overwrite: bool = False
    """Replace existing output files; without it an existing file is an error before any run."""

    @property
    def torch_precision(self) -> str:
        """What the torch backends run at: fp16 only on CUDA (the authors' setting), else fp32."""
        return "fp16" if self.device.startswith("cuda") and self.precision == "fp16" else "fp32"

    def edit_config(self) -> EditConfig:
        return EditConfig(working_size=self.working_size, scheduler=self.scheduler, seed=self.seed,
                          anchors=max(self.anchors), steps=max(self.steps))

    def pruning(self) -> dict:
        """The pruning settings given (EditConfig fields), for region_overrides."""
        given = {"prune_fractions": self.prune_fractions, "prune_keep": self.prune_keep}
        return {k: v for k, v in given.items() if v is not None}

    def replace(self, **changes) -> "BenchConfig":
        return replace(self, **changes)

    def validated(self) -> "BenchConfig":
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise InputError(what)

        unknown = [b for b in self.backends if b not in BACKEND_NAMES]
        need(not unknown, f"--backends {','.join(unknown)}: unknown; expected some of {','.join(BACKEND_NAMES)}")
        need(bool(self.backends), "--backends is empty; name at least one of " + ",".join(BACKEND_NAMES))
        need(self.runs >= 1, f"--runs {self.runs}: need at least 1 timed run")
        need(self.warmup >= 0, f"--warmup {self.warmup}: need 0 or more")
        need(all(k >= 1 for k in self.anchors), f"--anchors {self.anchors}: each K must be >= 1")
        need(all(n >= 1 for n in self.steps), f"--steps {self.steps}: each step count must be >= 1")
        need(self.precision in [p.value for p in Precision], f"--precision {self.precision}: expected fp32 or fp16")
        bad = [v for v in self.regions if v not in REGION_VARIANTS]
        need(not bad and bool(self.regions), f"--regions {','.join(bad) or '(empty)'}: expected some of {','.join(REGION_VARIANTS)}")
        need(self.authors_iterations >= 0, f"--authors-iterations {self.authors_iterations}: need 0 or more")
        need(self.models is not None or self.bundle is not None, "give --models or --bundle")
        need(self.image is None or Path(self.image).is_file(), f"--image {self.image}: no such file")
        for flag, path in (("--json", self.json_out), ("--markdown", self.markdown_out), ("--plot", self.plot_out)):
            need(path is None or self.overwrite or not Path(path).exists(),
                 f"{flag} {path} exists; pass --overwrite to replace it, or choose another path")
        for peer in self.peers:
            need(Path(peer).is_file(), f"--peer {peer}: no such file (bench/peer_optimum.sh writes it)")
        self.edit_config().replace(**self.pruning())  # replace validates: --prune-* bounds
        return self
