"""The batched K-way inpainting (2K UNet rows with guidance) equals K separate runs of diffusers'
own StableDiffusionInpaintPipeline on the same tiny models, noise and masks."""

import numpy as np
import pytest
import torch
from PIL import Image

from lredit.config import EditConfig
from lredit.engine.ops.noise import initial_noise
from lredit.kernels.geometry import box_masks

# Output pixels are uint8 on both sides; batch-size-dependent float summation can flip a rounding.
MAX_LEVELS = 2


@pytest.mark.parametrize("scheduler", ["model", "ddim"])
def test_batched_candidates_equal_diffusers_runs(tiny_models, reference, photo, scheduler):
    from diffusers import StableDiffusionInpaintPipeline
    from transformers import CLIPTokenizer

    from lredit.export.diffusers_schedulers import diffusers_scheduler

    cfg = reference.config.replace(scheduler=scheduler, steps=4, anchors=3)
    result = reference.edit(photo, "a bowl of strawberries", scheduler=scheduler, steps=4, anchors=3)
    vocab, merges = tiny_models.sd_tokenizer.files
    pipe = StableDiffusionInpaintPipeline(
        vae=tiny_models.vae,
        text_encoder=tiny_models.sd_text_encoder,
        tokenizer=CLIPTokenizer(str(vocab), str(merges), model_max_length=77),
        unet=tiny_models.unet,
        scheduler=diffusers_scheduler(tiny_models.scheduler_config, scheduler),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    size = cfg.working_size
    masks = box_masks(result.boxes_px, size)
    for k in range(cfg.anchors):
        noise = initial_noise(cfg.seed, k, int(result.size_index[k]), (4, size // 8, size // 8))
        mask = Image.fromarray((masks[k] * 255).astype(np.uint8))
        # diffusers samples the masked-image latent; the engine uses the posterior mean. Give
        # diffusers that latent, computed with diffusers' own image/mask processing.
        init = pipe.image_processor.preprocess(result.source, height=size, width=size)
        cond = pipe.mask_processor.preprocess(mask, height=size, width=size)
        with torch.no_grad():
            mil = pipe.vae.encode(init * (cond < 0.5)).latent_dist.mode() * pipe.vae.config.scaling_factor
        out = pipe(
            prompt=cfg.prompt_template.format(prompt="a bowl of strawberries"),
            image=result.source,
            mask_image=mask,
            masked_image_latents=mil,
            height=size,
            width=size,
            num_inference_steps=cfg.steps,
            guidance_scale=cfg.guidance,
            latents=torch.from_numpy(noise[None]),
            output_type="np",
        ).images[0]
        theirs = (out * 255).round().astype(np.int16)
        ours = np.asarray(result.candidates[k]).astype(np.int16)
        assert np.abs(ours - theirs).max() <= MAX_LEVELS, f"candidate {k}"
        assert (result.candidates[k] is not result.candidates[(k + 1) % cfg.anchors])


def test_candidates_differ_and_seed_reproduces(reference, photo):
    a = reference.edit(photo, "a red car")
    b = reference.edit(photo, "a red car")
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.anchors.tolist() == b.anchors.tolist()
    c0, c1 = (np.asarray(c).astype(int) for c in a.candidates[:2])
    assert np.abs(c0 - c1).max() > 0


def test_paste_back_keeps_outside_pixels(reference, photo):
    r = reference.edit(photo, "a red car", paste_back=True)
    src = np.asarray(r.source)
    masks = box_masks(r.boxes_px, r.config.working_size)
    for k, cand in enumerate(r.candidates):
        outside = masks[k] < 0.5
        assert np.array_equal(np.asarray(cand)[outside], src[outside])


def test_pick_by_objective_takes_the_lowest_region_loss(reference, photo):
    ranked = reference.edit(photo, "a red car", source_caption="a table")
    picked = reference.edit(photo, "a red car", source_caption="a table", final_pick="objective")
    assert ranked.scores.objective is None
    loss = picked.scores.objective
    assert loss.shape == (len(picked.candidates),) and np.isfinite(loss).all()
    assert picked.chosen == int(np.argmin(loss))
    assert np.array_equal(np.asarray(picked.image), np.asarray(picked.candidates[picked.chosen]))
    # the same candidates either way: only the pick differs
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ranked.candidates, picked.candidates))


def test_authors_compat_differs_as_documented(reference, photo):
    fixed = reference.edit(photo, "a red car", anchors=9)
    code = reference.edit(photo, "a red car", **{k: v for k, v in EditConfig.preset("authors").to_report().items()
                                                if k.startswith(("fix_", "distinct", "inpaint", "dino_", "rgn_s"))},
                          anchors=9)
    assert len({tuple(a) for a in fixed.anchors.tolist()}) == 9
    rows, cols = code.anchors[:4].T
    assert ((rows >= 15) & (rows <= 16) & (cols >= 15) & (cols <= 16)).all()  # centre 2x2 first


def test_caption_anchors_come_from_the_salient_pool_and_need_a_caption(reference, photo):
    from lredit.config import ANCHOR_POOL

    cfg = reference.config.replace(anchors=3)
    dino = reference.prepare(photo, "a red car", "a table", cfg)
    caption = reference.prepare(photo, "a red car", "a table", cfg.replace(anchor_source="caption"))
    both = reference.prepare(photo, "a red car", "a table", cfg.replace(anchor_source="both"))
    # the pool: the 3K most salient spaced patches, i.e. DINO's own anchors at K = 3 * 3
    dino_pool = reference.prepare(photo, "a red car", "a table", cfg.replace(anchors=ANCHOR_POOL * 3)).anchors.tolist()
    for prep in (caption, both):
        assert prep.anchors.shape == dino.anchors.shape
        assert all(a in dino_pool for a in prep.anchors.tolist())
        assert not prep.warnings or all("anchor_source" not in w for w in prep.warnings)
    none = reference.prepare(photo, "a red car", None, cfg.replace(anchor_source="caption"))
    assert none.anchors.tolist() == dino.anchors.tolist()
    assert any("needs a source caption" in w for w in none.warnings)
