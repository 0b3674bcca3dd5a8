"""The objective of every (anchor, size) pair of one image, from the pipeline's own stages: the
scorer `learn_sizes` and `lr-train-rgn` learn from.

`PairLosses(pipeline, image, prompt, caption)` runs stages 1-3 once (DINO, anchors, proposals +
ROI pool: `pooled`), embeds the source and the texts once, and is then called with (anchor,
size) pairs: it inpaints what is missing and returns each pair's total loss L. Noise is keyed
(seed, anchor k, size m) because size m is inpainted for all K anchors in one batch whose row k
is anchor k (the pipeline's `_denoise`), so a pair's image does not depend on what else was
asked. Asking for one pair of size m inpaints the K pairs of that size (cached; a pair is never
inpainted twice). Region search (issue #12, its row-batched chunked denoiser and pruning) is a
faster provider of the same interface: `pooled` and `__call__(pairs) -> losses`.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from . import images as image_ops
from .objective import LossTerms, RegionObjective, objective_texts
from .pipeline import EditPipeline, validate_prompt
from .timing import StageTimer

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
        self.inpainted_sizes: list[int] = []
        self._source = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.totals.shape

    def __call__(self, pairs: np.ndarray) -> np.ndarray:
        """pairs [n, 2] of (anchor, size index) -> total loss [n]."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        for size in np.unique(pairs[:, 1]):
            if np.isnan(self.totals[:, size]).any():
                self._score_size(int(size))
        return self.totals[pairs[:, 0], pairs[:, 1]]

    def all_losses(self) -> np.ndarray:
        """[K, M] totals of every pair (inpaints whatever is missing)."""
        k, m = self.shape
        return self(np.argwhere(np.ones((k, m), dtype=bool))).reshape(k, m)

    def _score_size(self, size: int) -> None:
        """Inpaint size `size` for all K anchors (row k = anchor k) and score the K candidates."""
        pipe, cfg, k = self.pipeline, self.config, self.shape[0]
        with self.timer.stage("masks"):
            work, masks, _ = pipe._masks(self.image, self.boxes[:, size], self.grid, cfg)
        with self.timer.stage("vae_encode"):
            latents = pipe._encode(work, masks)
        with self.timer.stage("denoise"):
            latents = pipe._denoise(masks, latents, self.hidden, np.full(k, size), cfg, self.timer, None)
        with self.timer.stage("vae_decode"):
            decoded = pipe._decode(latents, work, masks, cfg)
        with self.timer.stage("objective"):
            terms = self._losses([Image.fromarray(x) for x in decoded], Image.fromarray(work))
        self.totals[:, size] = terms.total
        for anchor in range(k):
            self.terms[anchor][size] = terms.entry(anchor)
        self.inpainted_sizes.append(size)
        log.debug("size %d: losses %s", size, np.round(terms.total, 4))

    def _losses(self, candidates: list[Image.Image], source: Image.Image) -> LossTerms:
        size = self.pipeline.assets.clip_image_size
        if self._source is None:  # the working image is the same for every size
            out = self.pipeline._run("clip_vision", pixels=image_ops.clip_pixels([source], size))
            self._source = (out["image_embeds"][0], out["tokens"][0])
        out = self.pipeline._run("clip_vision", pixels=image_ops.clip_pixels(candidates, size))
        return self.objective.losses(out["image_embeds"], out["tokens"], *self._source, self.text_embed, self.roi_text_embed)
