"""The authors' way of working, for the `authors` baseline: the same front stages as the
reference (DINO, anchors, ROI pool, RGN, masks), then diffusers' StableDiffusionInpaintPipeline
on the K masks, eager, then CLIP ranking. The whole diffusers call is timed as 'denoise' (its
text encoding, VAE encode and decode happen inside it and cannot be timed apart)."""

from __future__ import annotations

import numpy as np
import torch

from lredit.config import EditConfig, RegionMode
from lredit.engine.core.pipeline import EditPipeline
from lredit.engine.regions.interface import Inpainted
from lredit.engine.runtimes.reference.torch_backend import reference_pipeline
from lredit.export.diffusers_schedulers import diffusers_scheduler
from lredit.export.models import ModelSet


def _transformers_tokenizer(models: ModelSet):
    """diffusers' pipeline wants a transformers CLIPTokenizer: build it from the same files."""
    from transformers import CLIPTokenizer

    vocab, merges = models.sd_tokenizer.files
    return CLIPTokenizer(str(vocab), str(merges), model_max_length=77, pad_token=models.sd_tokenizer.pad_token)


class AuthorsPipeline(EditPipeline):
    def __init__(self, models: ModelSet, config: EditConfig, device: str = "cpu", dtype=torch.float32):
        from diffusers import StableDiffusionInpaintPipeline

        # Their code: the RGN's size per anchor, one inpaint per anchor (no search).
        reference = reference_pipeline(models, config.replace(regions=RegionMode.RGN), device, dtype)
        super().__init__(reference.sessions, reference.assets, reference.config)
        self.device, self.dtype = torch.device(device), dtype
        self.scheduler_config = models.scheduler_config
        self.diffusers = StableDiffusionInpaintPipeline(
            vae=models.vae, text_encoder=models.sd_text_encoder, tokenizer=_transformers_tokenizer(models),
            unet=models.unet, scheduler=diffusers_scheduler(models.scheduler_config, config.scheduler),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        ).to(device=self.device, dtype=dtype)
        self.diffusers.set_progress_bar_config(disable=True)

    # The inpainting stages collapse into one diffusers call, made in inpaint.
    def _text(self, prompt, cfg, warnings):
        return cfg.prompt_template.format(prompt=prompt)

    def inpaint(self, prep, pairs, on_step=None, prune=None) -> Inpainted:
        cfg, timer, prompt = prep.config, prep.timer, prep.hidden  # hidden: the prompt (_text above)
        with timer.stage("masks"):
            work, masks, boxes_px = self._masks(prep.image, prep.pair_boxes(pairs), prep.grid, cfg)
        with timer.stage("denoise"):
            images = self._diffusers_inpaint(masks, work, prompt, cfg)
        calls = len(self.diffusers.scheduler.timesteps)
        rows = (2 if cfg.do_guidance else 1) * len(pairs) * calls
        phases = [{"step": calls, "pairs_alive": len(pairs), "rows_run": rows}]
        return Inpainted(work, masks, boxes_px, np.arange(len(pairs)), images, rows, phases)

    def _diffusers_inpaint(self, masks, work, prompt, cfg):
        """diffusers draws the noise (one generator seeded once, as the authors)."""
        from PIL import Image

        k = masks.shape[0]
        self.diffusers.scheduler = diffusers_scheduler(self.scheduler_config, cfg.scheduler)
        out = self.diffusers(
            prompt=[prompt] * k,
            negative_prompt=[cfg.negative_prompt] * k if cfg.do_guidance else None,
            image=[Image.fromarray(work)] * k,
            mask_image=[Image.fromarray((m * 255).astype(np.uint8)) for m in masks],
            height=cfg.working_size,
            width=cfg.working_size,
            num_inference_steps=cfg.steps,
            guidance_scale=cfg.guidance,
            generator=torch.Generator(device="cpu").manual_seed(cfg.seed),
            output_type="np",
        ).images
        return (np.clip(out, 0.0, 1.0) * 255.0).round().astype(np.uint8)
