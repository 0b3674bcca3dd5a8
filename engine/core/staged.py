"""Values one request carries between the pipeline's stages (EditPipeline.prepare, inpaint_rows),
and the request's inpainter: the door the region modes get instead of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from lredit.config import EditConfig
from lredit.engine.core.denoise import DenoiseRows
from lredit.engine.ops.timing import StageTimer
from lredit.engine.regions.interface import Inpainted, PruneHook

if TYPE_CHECKING:
    from lredit.engine.core.pipeline import EditPipeline


@dataclass
class Prepared:
    """One request after stages 1-4 and the text (EditPipeline.prepare)."""

    config: EditConfig
    prompt: str
    source_caption: str | None
    timer: StageTimer
    warnings: list[str]
    image: Image.Image
    anchors: np.ndarray
    grid: tuple[int, int]
    pooled: np.ndarray
    boxes: np.ndarray
    """[K, M, 4] proposal boxes in feature cells."""
    log_probs: np.ndarray
    size_index: np.ndarray
    """[K] the RGN's size per anchor."""
    hidden: object
    """SD text states [2, T, D] (uncond, cond) or [1, T, D]; numpy or CuPy."""

    @property
    def shape(self) -> tuple[int, int]:
        """(K anchors, M sizes)."""
        return self.boxes.shape[0], self.boxes.shape[1]

    def pair_boxes(self, pairs: np.ndarray) -> np.ndarray:
        """[R, 4] cell boxes of the (anchor, size) rows `pairs`."""
        return self.boxes[pairs[:, 0], pairs[:, 1]]


@dataclass(frozen=True)
class StagedRows:
    """Stages 5-6 for a set of (anchor, size) rows: ready for the denoising loop."""

    work: np.ndarray
    """Working image [S, S, 3] (uint8, or float32 in 0..255 on the authors' path)."""
    masks: np.ndarray
    """[R, S, S] float32, 1 = repaint."""
    boxes_px: np.ndarray
    """[R, 4] pixel boxes."""
    rows: DenoiseRows


@dataclass(frozen=True)
class RequestInpainter:
    """regions.interface.Inpainter for one prepared request of `pipeline`."""

    pipeline: "EditPipeline"
    prep: Prepared
    on_step: Callable[[int, int], None] | None = None

    def inpaint(self, pairs: np.ndarray, prune: PruneHook | None = None) -> Inpainted:
        return self.pipeline.inpaint(self.prep, pairs, self.on_step, prune)

    def total_unet_calls(self) -> int:
        return self.pipeline.unet_calls(self.prep.config)
