"""The narrow door between the pipeline core and the region modes.

A region mode is handed a `RegionJob`: one request's inpainter (stages 5-9 for any set of
(anchor, size) rows), the CLIP graphs its scorer needs, and the values stages 1-4 produced. It
never sees the pipeline, so the core may import the modes and not the other way round (the
rooms contract in pyproject.toml forbids `regions -> core`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import numpy as np

from lredit.config import EditConfig
from lredit.engine.ops.timing import StageTimer
from lredit.rgn_checkpoint import RgnParams
from lredit.tokenizer import ClipTokenizer


@dataclass(frozen=True)
class Inpainted:
    """Stages 5-9 for a set of (anchor, size) rows."""

    work: np.ndarray
    """Working image uint8 [S, S, 3]."""
    masks: np.ndarray
    """[R, S, S] masks of every row started."""
    boxes_px: np.ndarray
    """[R, 4] pixel boxes of every row started."""
    live: np.ndarray
    """Indices of the rows that ran to the end (all without pruning)."""
    images: np.ndarray
    """[len(live), S, S, 3] uint8 decoded results of the live rows."""
    unet_rows: int
    phases: list
    """Per phase: step reached, pairs alive in it, UNet rows run in it."""


PruneHook = Callable[[int, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(step, live row indices, decoded x0 images, working image) -> indices (into live) that go on;
the hook's `steps` attribute lists the UNet-call indices it is called at."""


class Inpainter(Protocol):
    """One request's stages 5-9 (masks, VAE encode, denoise, decode) for any rows."""

    def inpaint(self, pairs: np.ndarray, prune: PruneHook | None = None) -> Inpainted:
        """pairs [R, 2] (anchor, size index) -> their decoded images (pruned rows dropped)."""
        ...

    def total_unet_calls(self) -> int:
        """UNet calls of one full schedule (PNDM: steps + 1), the scale prune fractions refer to."""
        ...


class GraphRunner(Protocol):
    def __call__(self, graph: str, **feeds: np.ndarray) -> Mapping[str, np.ndarray]:
        """Run one graph on named numpy inputs; outputs as numpy, checked finite."""
        ...


@dataclass(frozen=True)
class ClipModels:
    """What a CLIP scorer needs: the graphs, their batch limits, the tokenizer, the image size."""

    run: GraphRunner
    tokenizer: ClipTokenizer
    image_size: int
    batch_limits: Mapping[str, int] = field(default_factory=dict)
    """Graph -> largest batch per call (the bundle's profile); larger batches go in chunks."""


class LossTable(Protocol):
    total: np.ndarray
    """[N] total loss per scored pair."""

    def entry(self, i: int) -> dict:
        """Pair i's loss terms, JSON-ready."""
        ...


Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray], LossTable]
"""(pairs [N, 2], decoded uint8 images [N, S, S, 3], working image) -> LossTable."""


@dataclass(frozen=True)
class RegionJob:
    """One edit's inputs to the region choice (built by the pipeline core)."""

    inpainter: Inpainter
    clip: ClipModels
    prompt: str
    source_caption: str | None
    pooled: np.ndarray
    """[K, M*c, l, l] the RGN's input per anchor (what `learn` trains on)."""
    shape: tuple[int, int]
    """(K anchors, M sizes)."""
    config: EditConfig
    timer: StageTimer
    rgn: RgnParams | None
    """The RGN's weights in numpy where known: what mode `learn` starts from."""
    scorer_factory: Callable[["RegionJob"], Scorer] | None = None
    """None = CLIP and the paper's objective (regions.scorer.ClipScorer)."""

