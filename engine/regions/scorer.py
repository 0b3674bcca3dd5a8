"""The one scorer of (anchor, size) pairs: the paper's objective L on CLIP of the decoded pairs.

Region search, `learn` and `lr-train-rgn` (training.pair_losses) all score through `ClipScorer`;
its clip_vision calls are chunked to the bundle's profile (`ClipModels.batch_limits`), since a
search's K x M images (54 with the defaults) exceed a TensorRT profile's maximum.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from lredit.engine.ops import images as image_ops
from lredit.engine.ops.batching import run_in_chunks
from lredit.engine.ops.objective import LossTerms, RegionObjective, objective_texts
from lredit.engine.regions.interface import ClipModels, RegionJob, Scorer
from lredit.graphs import Outputs


def scoring_unavailable(clip_vision_outputs) -> str | None:
    """Why pairs cannot be scored with these CLIP graphs (None when they can): the objective needs
    clip_vision's `tokens` output, which bundles exported before it lack."""
    if Outputs.TOKENS not in clip_vision_outputs:
        return "the clip_vision graph has no 'tokens' output: re-export the bundle with this lredit (lr-export)"
    return None


def job_scorer(job: RegionJob) -> Scorer:
    """The job's own scorer factory (tests, studies), else CLIP and the paper's objective."""
    if job.scorer_factory is not None:
        return job.scorer_factory(job)
    return ClipScorer(job.clip, job.prompt, job.source_caption, job.config.prompt_template)


class ClipScorer:
    """CLIP vision (embeddings and penultimate tokens) of each pair and of the working image, CLIP
    text of T and T_roi, then ops.objective."""

    def __init__(self, clip: ClipModels, prompt: str, source_caption: str | None, prompt_template: str,
                 objective: RegionObjective | None = None):
        self.clip = clip
        self.objective = objective or RegionObjective()
        texts = objective_texts(prompt, source_caption, prompt_template)
        self.text_embed, self.roi_embed = (self._text(t) if t else None for t in texts)
        self.notes = [] if self.roi_embed is not None else ["no --source-caption: L_dir is left out of L (L = L_clip + L_str)"]
        self.source = None
        """clip_vision outputs of the working image (the same for every pair), on first call."""

    def _text(self, text: str) -> np.ndarray:
        ids = self.clip.tokenizer.encode(text).ids[None]
        return self.clip.run("clip_text", input_ids=ids)[Outputs.TEXT_EMBEDS][0]

    def vision(self, images: np.ndarray) -> dict:
        """clip_vision of uint8 images [N, S, S, 3], in chunks the graph's profile takes."""
        pixels = image_ops.clip_pixels([Image.fromarray(x) for x in images], self.clip.image_size)
        run = functools.partial(self.clip.run, "clip_vision")
        return run_in_chunks(run, self.clip.batch_limits.get("clip_vision"), pixels=pixels)

    def __call__(self, pairs: np.ndarray, images: np.ndarray, work: np.ndarray) -> LossTerms:
        if self.source is None:
            self.source = self.vision(image_ops.to_uint8(work)[None])
        out = self.vision(images)
        embeds, tokens = Outputs.IMAGE_EMBEDS, Outputs.TOKENS
        return self.objective.losses(
            out[embeds], out[tokens], self.source[embeds][0], self.source[tokens][0], self.text_embed, self.roi_embed,
        )
