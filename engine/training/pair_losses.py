"""The objective of every (anchor, size) pair of one image, from the pipeline's own stages: the
scorer `learn_sizes` and `lr-train-rgn` learn from.

`PairLosses(pipeline, image, prompt, caption)` runs stages 1-3 once (DINO, anchors, proposals +
ROI pool: `pooled`), embeds the source and the texts once, and is then called with (anchor,
size) pairs: it inpaints what is missing and returns each pair's total loss L. Noise is keyed
(seed, anchor k, size m) and the pipeline's `inpaint` runs one denoise row per pair, so a pair's
image does not depend on what else was asked: exactly the missing pairs are inpainted, each at
most once. Region search's
`search` is the pruned provider of the same losses; this class is the exhaustive one that
learning needs: `pooled` and `__call__(pairs) -> losses`.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from lredit.engine.core.pipeline import EditPipeline, validate_prompt
from lredit.engine.ops import images as image_ops
from lredit.engine.ops.objective import LossTerms, RegionObjective, objective_texts
from lredit.engine.ops.timing import StageTimer

log = logging.getLogger(__name__)


class PairLosses:
    """Loss of each (anchor, size) pair of one image under `objective` (see module docstring)."""

    def __init__(self, pipeline: EditPipeline, image, prompt: str, source_caption: str | None = None,
                 objective: RegionObjective | None = None, **overrides):
        validate_prompt(prompt)
        self.pipeline, self.prompt, self.objective = pipeline, prompt, objective or RegionObjective()
        self.config = cfg = pipeline.config.replace(**overrides) if overrides else pipeline.config
        self.timer, self.warnings = StageTimer(), []
        self.image = image_ops.load_image(image)
        with self.timer.stage("dino"):
            tokens, saliency, self.grid = pipeline._saliency(image_ops.dino_pixels(self.image, cfg.dino_size, cfg.dino_imagenet_norm))
        with self.timer.stage("anchors"):
            self.anchors = pipeline._anchors(saliency, self.grid, cfg)
        with self.timer.stage("roi_pool"):
            self.pooled, self.boxes = pipeline._pool(tokens, self.grid, self.anchors, cfg)
        with self.timer.stage("text"):
            self.hidden = pipeline._text(prompt, cfg, self.warnings)
            text, roi_text = objective_texts(prompt, source_caption, cfg.prompt_template)
            ids = [pipeline.assets.clip_tokenizer.encode(t).ids for t in (text, roi_text) if t is not None]
            embeds = pipeline._run("clip_text", input_ids=np.stack(ids))["text_embeds"]
            self.text_embed, self.roi_text_embed = embeds[0], (embeds[1] if roi_text is not None else None)
        k, m = self.boxes.shape[:2]
        self.totals = np.full((k, m), np.nan)
        self.terms: list[list[dict | None]] = [[None] * m for _ in range(k)]
        self.pairs_inpainted = 0
        self._source = None

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
        images, work = self._inpaint(pairs)
        with self.timer.stage("objective"):
            terms = self._losses([Image.fromarray(x) for x in images], Image.fromarray(work))
        self.totals[pairs[:, 0], pairs[:, 1]] = terms.total
        for i, (anchor, size) in enumerate(pairs.tolist()):
            self.terms[anchor][size] = terms.entry(i)
        self.pairs_inpainted += len(pairs)
        log.debug("pairs %s: losses %s", pairs.tolist(), np.round(terms.total, 4))

    def _inpaint(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded uint8 images [n, S, S, 3] of `pairs` (the pipeline's row-batched inpaint, one
        denoise row per pair, noise keyed by pair) and the working image."""
        boxes = self.boxes[pairs[:, 0], pairs[:, 1]]
        inp = self.pipeline.inpaint(self.image, boxes, self.grid, pairs, self.hidden, self.config, self.timer, None)
        return inp.images, inp.work

    def _losses(self, candidates: list[Image.Image], source: Image.Image) -> LossTerms:
        size = self.pipeline.assets.clip_image_size
        if self._source is None:  # the working image is the same for every size
            out = self.pipeline._run("clip_vision", pixels=image_ops.clip_pixels([source], size))
            self._source = (out["image_embeds"][0], out["tokens"][0])
        out = self.pipeline._run("clip_vision", pixels=image_ops.clip_pixels(candidates, size))
        return self.objective.losses(out["image_embeds"], out["tokens"], *self._source, self.text_embed, self.roi_text_embed)
