"""The objective of every (anchor, size) pair of one image, from the pipeline's own stages: the
scorer `learn_sizes` and `lr-train-rgn` learn from.

`PairLosses(pipeline, image, prompt, caption)` prepares the request once (stages 1-4 and the text,
`EditPipeline.prepare`: `pooled`), and is then called with (anchor, size) pairs: it inpaints what
is missing and returns each pair's total loss L under the one scorer region search uses
(regions.scorer.ClipScorer, chunked to the clip_vision profile). Noise is keyed (seed, anchor k,
size m) and the pipeline's `inpaint` runs one denoise row per pair, so a pair's image does not
depend on what else was asked: exactly the missing pairs are inpainted, each at most once. Region
search is the pruned provider of the same losses; this class is the exhaustive one that learning
needs: `pooled` and `__call__(pairs) -> losses`.
"""

from __future__ import annotations

import logging

import numpy as np

from lredit.engine.core.pipeline import EditPipeline
from lredit.engine.ops.objective import RegionObjective
from lredit.engine.regions.scorer import ClipScorer

log = logging.getLogger(__name__)


class PairLosses:
    """Loss of each (anchor, size) pair of one image under `objective` (see module docstring)."""

    def __init__(self, pipeline: EditPipeline, image, prompt: str, source_caption: str | None = None,
                 objective: RegionObjective | None = None, **overrides):
        self.pipeline = pipeline
        self.config = cfg = pipeline.config_for(overrides)
        self.prep = pipeline.prepare(image, prompt, source_caption, cfg)
        self.scorer = ClipScorer(pipeline.clip_models(), prompt, source_caption, cfg.prompt_template, objective)
        k, m = self.prep.shape
        self.totals = np.full((k, m), np.nan)
        self.terms: list[list[dict | None]] = [[None] * m for _ in range(k)]
        self.pairs_inpainted = 0

    @property
    def pooled(self) -> np.ndarray:
        """[K, M*c, l, l] the RGN's input per anchor."""
        return self.prep.pooled

    @property
    def text_embed(self) -> np.ndarray:
        return self.scorer.text_embed

    @property
    def roi_text_embed(self) -> np.ndarray | None:
        return self.scorer.roi_embed

    @property
    def shape(self) -> tuple[int, int]:
        return self.totals.shape

    def __call__(self, pairs: np.ndarray) -> np.ndarray:
        """pairs [n, 2] of (anchor, size index) -> total loss [n]; each pair inpainted at most once."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        missing = pairs[np.isnan(self.totals[pairs[:, 0], pairs[:, 1]])]
        if len(missing):
            self._score(np.unique(missing, axis=0))
        return self.totals[pairs[:, 0], pairs[:, 1]]

    def all_losses(self) -> np.ndarray:
        """[K, M] totals of every pair (inpaints whatever is missing)."""
        k, m = self.shape
        return self(np.argwhere(np.ones((k, m), dtype=bool))).reshape(k, m)

    def _score(self, pairs: np.ndarray) -> None:
        inp = self.pipeline.inpaint(self.prep, pairs)
        with self.prep.timer.stage("objective"):
            terms = self.scorer(pairs, inp.images, inp.work)
        self.totals[pairs[:, 0], pairs[:, 1]] = terms.total
        for i, (anchor, size) in enumerate(pairs.tolist()):
            self.terms[anchor][size] = terms.entry(i)
        self.pairs_inpainted += len(pairs)
        log.debug("pairs %s: losses %s", pairs.tolist(), np.round(terms.total, 4))
