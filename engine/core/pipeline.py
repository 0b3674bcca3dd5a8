"""The edit pipeline as numbered stages over numpy arrays. Which backend runs each graph
(torch reference, ONNX Runtime, TensorRT) is the sessions' business, not the pipeline's.

validate -> 1 saliency (dino) -> 2 anchors -> 3 proposals + ROI pool -> 4 RGN -> text ->
5 masks -> 6 VAE encode -> 7 denoise (one row per (anchor, size) pair, guidance, chunked to the
bundle's batch) -> 8 decode -> 9 region choice (engine/regions: the RGN's sizes, or search
scoring every pair and pruning mid-schedule) -> 10 rank the K winners.

The region modes are handed a `RegionJob` (regions.interface): this request's inpainter and the
CLIP graphs, not the pipeline.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
from PIL import Image

from lredit.config import ANCHOR_POOL, PRUNE_CROP_MARGIN, EditConfig, RegionMode
from lredit.engine.core.denoise import DenoiseRows, RowDenoiser
from lredit.engine.core.sessions import GraphSession, Scheduler
from lredit.engine.core.staged import Prepared, RequestInpainter, StagedRows
from lredit.engine.ops import anchors as anchor_ops
from lredit.engine.ops import images as image_ops
from lredit.engine.ops.arrays import array_module, check_finite, on_device, to_host
from lredit.engine.ops.batching import run_in_chunks, tightest
from lredit.engine.ops.noise import initial_noise
from lredit.engine.ops.objective import cosine
from lredit.engine.ops.ranking import RankScores, rank_candidates
from lredit.engine.ops.timing import StageTimer
from lredit.engine.regions import modes as regions
from lredit.engine.regions.interface import ClipModels, Inpainted, PruneHook, RegionJob
from lredit.engine.regions.outcome import ChosenRegions, RegionsOutcome
from lredit.engine.regions.scorer import ClipScorer, scoring_unavailable
from lredit.errors import InputError
from lredit.graphs import Outputs
from lredit.kernels import roi_pool_ref
from lredit.kernels.geometry import box_masks, cells_to_pixels, proposal_boxes
from lredit.rgn_checkpoint import RgnParams
from lredit.tokenizer import ClipTokenizer


@dataclass(frozen=True)
class PipelineAssets:
    """Everything besides the graphs: tokenizers, the projection, the scheduler factory."""

    clip_tokenizer: ClipTokenizer
    sd_tokenizer: ClipTokenizer
    projection_weight: np.ndarray
    """[c, d] 1x1 projection of DINO features before pooling."""
    projection_bias: np.ndarray
    make_scheduler: Callable[[str], Scheduler]
    """config.scheduler name -> a fresh scheduler."""
    random_weights: bool = False
    sources: dict = field(default_factory=dict)
    latent_channels: int = 4
    unet_channels: int = 9
    """The UNet's input channels: 2 x latent + 1 for an inpainting UNet, latent for a text-to-image one."""
    vae_scale_factor: int = 8
    clip_image_size: int = 224
    roi_pool: Callable = roi_pool_ref.roi_pool_anchors
    """(tokens, grid, anchors, half_sizes, weight, bias, PoolSpec) -> (pooled, boxes): the
    numpy reference, or kernels.loader.CudaRoiPool on GPU."""
    batch_limits: dict = field(default_factory=dict)
    """Graph -> largest batch per call (a bundle's profile); larger batches run in chunks."""
    decoder_crop_min: int | None = None
    """The smallest latent side the VAE decoder takes below the working size's (prune_decode
    'crop'); None: it decodes the full latent only (a bundle exported before crops)."""
    rgn: RgnParams | None = None
    """The RGN's weights in numpy (head + projection) where known: what mode `learn` starts from."""
    notes: tuple[str, ...] = ()
    """Warnings about the models themselves (e.g. a head-only RGN checkpoint), repeated in every
    edit's warnings."""


@dataclass
class EditResult:
    image: Image.Image
    """The chosen candidate at the working resolution."""
    candidates: list[Image.Image]
    source: Image.Image
    """The working image (centre crop at working_size) the candidates were inpainted from."""
    anchors: np.ndarray
    """[K, 2] (row, col) patch of each anchor."""
    grid: tuple[int, int]
    boxes_cells: np.ndarray
    """[K, M, 4] proposals in feature cells."""
    size_index: np.ndarray
    """[K] chosen proposal per anchor."""
    boxes_px: np.ndarray
    """[K, 4] chosen boxes in working-image pixels (inclusive)."""
    probabilities: np.ndarray
    """[K, M] RGN box-size distribution."""
    scores: RankScores
    chosen: int
    timings: dict
    warnings: list[str]
    config: EditConfig
    prompt: str
    source_caption: str | None = None
    regions: RegionsOutcome | None = None
    """How the box sizes were chosen: mode, losses per pair, pruning phases, UNet rows."""
    editor: str = "inpaint"
    """The base editor that ran ('inpaint' or 'sd-blend', EditPipeline.editor)."""


class EditPipeline:
    def __init__(self, sessions: Mapping[str, GraphSession], assets: PipelineAssets, config: EditConfig | None = None,
                 scorer_factory: Callable | None = None):
        self.sessions = sessions
        self.assets = assets
        self.config = (config or EditConfig()).validated()
        self.scorer_factory = scorer_factory
        """(RegionJob) -> scorer of decoded pairs; None = CLIP and the paper's objective (regions.scorer)."""

    fixed_settings: tuple[str, ...] = ()
    """EditConfig fields these graphs were built for, which an edit may not change."""
    fixed_message = ""
    """Why they are fixed and what to do instead: '{setting}' is the fixed value (EditConfig.check_overrides)."""

    def with_sessions(self, sessions: Mapping[str, GraphSession] | None = None, assets: PipelineAssets | None = None) -> "EditPipeline":
        """A new pipeline of the same kind over other sessions and/or assets; this one is unchanged."""
        new = copy.copy(self)
        new.sessions = dict(self.sessions if sessions is None else sessions)
        new.assets = self.assets if assets is None else assets
        return new

    # ------------------------------------------------------------------------------------
    def edit(
        self,
        image,
        prompt: str,
        source_caption: str | None = None,
        *,
        on_step: Callable[[int, int], None] | None = None,
        **overrides,
    ) -> EditResult:
        cfg = self.config_for(overrides)
        prep = self.prepare(image, prompt, source_caption, cfg)
        # 5-9: masks, VAE encode, denoise, decode for the pairs the region mode needs
        mode = self.region_mode(cfg, prep.warnings)
        chosen = regions.choose_regions(mode, self.job(prep, on_step), prep.size_index)
        return self.finish(prep, chosen)

    def config_for(self, overrides: Mapping) -> EditConfig:
        """This pipeline's config with one edit's overrides; an unknown setting, or one these graphs
        cannot run, is an InputError naming it (EditConfig.check_overrides, then check_limits)."""
        self.config.check_overrides(overrides, self.fixed_settings, self.fixed_message)
        cfg = self.config.replace(**overrides) if overrides else self.config
        self.check_limits(cfg)
        self.editor(cfg)
        return cfg

    def editor(self, cfg: EditConfig) -> str:
        """The base editor this edit runs ('inpaint' or 'sd-blend'): cfg.editor, with 'auto'
        resolved by the UNet's input channels; an editor this UNet cannot run is an InputError."""
        plain, channels = self.assets.latent_channels, self.assets.unet_channels
        inpainting = channels == 2 * plain + 1
        if not inpainting and channels != plain:
            raise InputError(f"the UNet takes {channels} input channels: neither an inpainting UNet ({2 * plain + 1}) "
                             f"nor a text-to-image one ({plain}); no editor runs it")
        if cfg.editor == "auto":
            return "inpaint" if inpainting else "sd-blend"
        if cfg.editor == "inpaint" and not inpainting:
            raise InputError(f"editor='inpaint' needs an inpainting UNet ({2 * plain + 1} input channels); this one is a "
                             f"text-to-image UNet ({channels}): use --editor sd-blend (or auto)")
        return cfg.editor

    def check_limits(self, cfg: EditConfig) -> None:
        """Refuse a config these graphs cannot run (a bundle's profile); any config runs here."""

    def region_mode(self, cfg: EditConfig, warnings: list) -> RegionMode:
        """The region mode this edit runs (regions.resolve_mode); a fallback's warning goes to `warnings`."""
        return regions.resolve_mode(cfg, self.has_rgn_checkpoint, self.search_unavailable(), warnings)

    def search_unavailable(self) -> str | None:
        """Why this pipeline cannot score pairs (None when it can)."""
        if self.scorer_factory is not None:
            return None
        return scoring_unavailable(self.sessions["clip_vision"].output_names)

    def clip_models(self) -> ClipModels:
        """The CLIP graphs, as the region scorer takes them."""
        return ClipModels(self.run_graph, self.assets.clip_tokenizer, self.assets.clip_image_size, self.assets.batch_limits)

    def job(self, prep: Prepared, on_step=None) -> RegionJob:
        """What a region mode gets for one prepared request: its inpainter and the CLIP graphs."""
        return RegionJob(RequestInpainter(self, prep, on_step), self.clip_models(), prep.prompt, prep.source_caption,
                         prep.pooled, prep.shape, prep.config, prep.timer, self.assets.rgn, self.scorer_factory)

    def unet_calls(self, cfg: EditConfig) -> int:
        """UNet calls of one denoising schedule under cfg (PNDM: steps + 1)."""
        return len(self.assets.make_scheduler(cfg.scheduler).set_timesteps(cfg.steps))

    def prepare(self, image, prompt: str, source_caption: str | None, cfg: EditConfig) -> Prepared:
        """Stages 1-4 and the text: everything the region choice needs, for one request."""
        timer, warnings = StageTimer(), list(self.assets.notes)
        with timer.stage("validate"):
            validate_prompt(prompt)
            if source_caption is not None:
                check_text(source_caption, "source_caption")
            img = image_ops.load_image(image)
        with timer.stage("preprocess"):
            dino_in = image_ops.dino_pixels(img, cfg.dino_size, cfg.dino_imagenet_norm)
        with timer.stage("dino"):
            tokens, saliency, grid = self._saliency(dino_in)
        with timer.stage("anchors"):
            anchors = self._anchors(saliency, grid, cfg)
            if cfg.anchor_source != "dino":
                anchors = self._caption_anchors(img, saliency, grid, source_caption, cfg, warnings, anchors)
        with timer.stage("roi_pool"):
            pooled, boxes = self._pool(tokens, grid, anchors, cfg)
        with timer.stage("rgn"):
            log_probs = self.run_graph("rgn", pooled=pooled)[Outputs.LOG_PROBS]
            size_index = self._choose_sizes(log_probs, cfg)
        with timer.stage("text"):
            hidden = self._text(prompt, cfg, warnings)
        return Prepared(cfg, prompt, source_caption, timer, warnings, img, anchors, grid, pooled, boxes, log_probs, size_index, hidden)

    def finish(self, prep: Prepared, chosen: ChosenRegions) -> EditResult:
        """Stage 10: rank the K winners of one request."""
        cfg = prep.config
        with prep.timer.stage("rank"):
            candidates = [Image.fromarray(x) for x in chosen.images]
            source = Image.fromarray(image_ops.to_uint8(chosen.work))
            scores = self._rank(candidates, source, prep.prompt, cfg)
            if cfg.final_pick == "objective":
                scores = self._pick_by_objective(scores, chosen.images, chosen.work, prep)
        return EditResult(
            image=candidates[scores.chosen],
            candidates=candidates,
            source=source,
            anchors=prep.anchors,
            grid=prep.grid,
            boxes_cells=prep.boxes,
            size_index=chosen.outcome.chosen_size,
            boxes_px=chosen.boxes_px,
            probabilities=np.exp(prep.log_probs.astype(np.float64)),
            scores=scores,
            chosen=scores.chosen,
            timings=prep.timer.report(),
            warnings=prep.warnings,
            config=cfg,
            prompt=prep.prompt,
            source_caption=prep.source_caption,
            regions=chosen.outcome,
            editor=self.editor(cfg),
        )

    @property
    def has_rgn_checkpoint(self) -> bool:
        """True when the RGN's weights come from a checkpoint (not the seeded initialisation)."""
        return not str(self.assets.sources.get("rgn", "seeded")).startswith("seeded")

    def batch_limit(self, graph: str, cfg: EditConfig) -> int | None:
        """Largest batch one call of `graph` takes: the bundle's profile, and for the UNet also
        the config's memory cap (None = no limit)."""
        cap = cfg.max_unet_batch if graph == "unet" else 0
        return tightest(self.assets.batch_limits.get(graph), cap)

    def inpaint(self, prep: Prepared, pairs: np.ndarray, on_step=None, prune: PruneHook | None = None) -> Inpainted:
        """Stages 5-9 for the rows `pairs` ([R, 2] (anchor, size)) of a prepared request.
        `prune`, if given, is called at its `steps` with (step, live row indices, decoded x0
        images, working image) and returns which of the live rows continue."""
        cfg, timer = prep.config, prep.timer
        staged = self.inpaint_rows(prep, pairs)
        work, masks = staged.work, staged.masks
        with timer.stage("denoise"):
            den = self.denoiser(cfg, timer, on_step)
            den.start(staged.rows)
            live, phases = np.arange(len(pairs)), []
            for step in (prune.steps if prune is not None else ()):
                rows_before = den.unet_rows
                x0 = den.run(until=step)
                with timer.stage("prune_decode"):
                    images = self.decode_pruning(x0, work, masks[live], staged.boxes_px[live], cfg)
                keep = np.asarray(prune(step, live, images, work), dtype=np.int64)
                phases.append({"step": step, "pairs_alive": len(live), "rows_run": den.unet_rows - rows_before})
                den.keep(keep)
                live = live[keep]
            rows_before = den.unet_rows
            latents = den.run()
            phases.append({"step": den.total_steps, "pairs_alive": len(live), "rows_run": den.unet_rows - rows_before})
            check_finite("denoise", "latents", latents)
        with timer.stage("vae_decode"):
            images = self.decode(latents, work, masks[live], cfg)
        return Inpainted(work, masks, staged.boxes_px, live, images, den.unet_rows, phases)

        # -- stages --------------------------------------------------------------------------
    def _saliency(self, pixels: np.ndarray):
        out = self.run_graph("dino", pixels=pixels)
        tokens, saliency = out[Outputs.FEATURES][0], out[Outputs.SALIENCY][0]
        side = int(round(np.sqrt(tokens.shape[0])))
        if side * side != tokens.shape[0]:
            raise InputError(f"DINO returned {tokens.shape[0]} patch tokens; a square grid was expected")
        return tokens, saliency, (side, side)

    @staticmethod
    def _anchors(saliency: np.ndarray, grid, cfg: EditConfig) -> np.ndarray:
        values = anchor_ops.cumulative_saliency(saliency)
        return anchor_ops.select_anchors(
            values, grid, cfg.anchors, distinct=cfg.distinct_anchors, margin=cfg.max_window, spacing=cfg.anchor_spacing
        )

    def _caption_anchors(self, img: Image.Image, saliency: np.ndarray, grid, caption: str | None, cfg: EditConfig,
                         warnings: list[str], dino_anchors: np.ndarray) -> np.ndarray:
        """anchor_source caption/both: the ANCHOR_POOL * K most salient spaced patches, each scored
        by CLIP's cosine between the caption and a crop around it (the two smallest boxes, the
        better of the two: an object fills one of them), re-ordered (ops.anchors.caption_order)."""
        if not (caption and caption.strip()):
            warnings.append(f"anchor_source={cfg.anchor_source!r} needs a source caption: the anchors are DINO's")
            return dino_anchors
        if not cfg.distinct_anchors:
            warnings.append(f"anchor_source={cfg.anchor_source!r} applies to distinct anchors only: the anchors are DINO's")
            return dino_anchors
        rows, cols = grid
        pool = anchor_ops.select_anchors(anchor_ops.cumulative_saliency(saliency), grid, min(ANCHOR_POOL * cfg.anchors, rows * cols),
                                         distinct=True, margin=cfg.max_window, spacing=cfg.anchor_spacing)
        sizes = cfg.half_sizes[:2]
        boxes = cells_to_pixels(proposal_boxes(pool, sizes, grid, fix_axes=cfg.fix_anchor_axes).reshape(-1, 4), grid, cfg.dino_size)
        seen = np.asarray(image_ops.square_crop(img, cfg.dino_size))
        crops = [Image.fromarray(seen[y1:y2 + 1, x1:x2 + 1]) for x1, y1, x2, y2 in boxes.astype(np.int64)]
        embeds = self.run_chunked("clip_vision", pixels=image_ops.clip_pixels(crops, self.assets.clip_image_size))
        ids = self.assets.clip_tokenizer.encode(cfg.prompt_template.format(prompt=caption.strip())).ids
        text = self.run_graph("clip_text", input_ids=ids[None])[Outputs.TEXT_EMBEDS][0]
        relevance = cosine(embeds[Outputs.IMAGE_EMBEDS], text).reshape(len(pool), len(sizes)).max(axis=1)
        return pool[anchor_ops.caption_order(relevance, cfg.anchor_source)[: cfg.anchors]]

    def _pool(self, tokens: np.ndarray, grid, anchors: np.ndarray, cfg: EditConfig):
        """Proposal boxes of every (anchor, size) and their pooled features, in one call: the
        fused CUDA kernel on GPU, its numpy reference otherwise."""
        spec = roi_pool_ref.PoolSpec(
            out_size=cfg.roi_size,
            spatial_scale=1.0 if cfg.fix_roi_scale else 0.125,
            sampling_ratio=cfg.roi_sampling_ratio,
            aligned=cfg.roi_aligned,
            swap_axes=not cfg.fix_anchor_axes,
            layout="anchor" if cfg.fix_rgn_layout else "authors",
        )
        pooled, boxes = self.assets.roi_pool(
            tokens, grid, anchors, cfg.half_sizes, self.assets.projection_weight, self.assets.projection_bias, spec
        )
        return to_host(pooled), to_host(boxes)

    @staticmethod
    def _choose_sizes(log_probs: np.ndarray, cfg: EditConfig) -> np.ndarray:
        logits = log_probs.astype(np.float64)
        if cfg.rgn_sampling == "gumbel":
            rng = np.random.default_rng([cfg.seed, 0x6B5])
            logits = logits - np.log(-np.log(rng.uniform(1e-20, 1.0, size=logits.shape)))
        return np.argmax(logits, axis=-1).astype(np.int64)

    def _masks(self, img: Image.Image, chosen_boxes: np.ndarray, grid, cfg: EditConfig):
        """Working image [S, S, 3] (uint8, or float32 in 0..255 on the code's path), masks float32
        [K, S, S] (1 = repaint), pixel boxes."""
        size = cfg.working_size
        if cfg.inpaint_original:
            work = np.asarray(image_ops.square_crop(img, size))
            boxes_px = cells_to_pixels(chosen_boxes, grid, size)
            return work, box_masks(boxes_px, size), boxes_px
        # The code: the mask drawn on the DINO-size crop as mask[:, y1:y2, x1:x2] = 1 (end row and
        # column excluded), crop and mask resized to the working size bilinearly (torchvision
        # T.Resize on tensors), the mask binarised at 0.5 by diffusers, which resizes neither.
        crop = image_ops.to_chw_unit(image_ops.square_crop(img, cfg.dino_size))
        work = image_ops.resize_bilinear(crop, size).transpose(1, 2, 0) * np.float32(255.0)  # floats, as diffusers gets them
        small = box_masks(cells_to_pixels(chosen_boxes, grid, cfg.dino_size), cfg.dino_size, exclusive_end=True)
        masks = (image_ops.resize_bilinear(small, size) >= 0.5).astype(np.float32)
        boxes_px = np.array([_mask_bbox(m) for m in masks], dtype=np.int64)
        return work, masks, boxes_px

    def _text(self, prompt: str, cfg: EditConfig, warnings: list[str]) -> np.ndarray:
        """[2, 77, D] (unconditional, conditional) or [1, 77, D] without guidance."""
        cond = self.assets.sd_tokenizer.encode(cfg.prompt_template.format(prompt=prompt))
        if cond.truncated:
            warnings.append(
                f"prompt has {cond.token_count} tokens with its template; the text encoders take "
                f"{self.assets.sd_tokenizer.max_length - 2}, the rest was truncated"
            )
        ids = [cond.ids]
        if cfg.do_guidance:
            ids.insert(0, self.assets.sd_tokenizer.encode(cfg.negative_prompt).ids)
        return self.run_graph("sd_text", keep_on_device=True, input_ids=np.stack(ids))[Outputs.HIDDEN_STATES]

    def _encode(self, work: np.ndarray, masks: np.ndarray, *, masked: bool, source: bool):
        """(latents of the image with each mask's pixels zeroed [R, C, h, w] or None, latent of the
        whole image [1, C, h, w] or None), in one encoder batch."""
        image = image_ops.sd_pixels(work[None])
        parts = ([(image * (masks[:, None] < 0.5)).astype(np.float32)] if masked else []) + ([image.astype(np.float32)] if source else [])
        latents = self.run_chunked("vae_encoder", keep_on_device=True, images=np.concatenate(parts))[Outputs.LATENTS]
        return (latents[: len(masks)] if masked else None), (latents[-1:] if source else None)

    def inpaint_rows(self, prep: Prepared, pairs: np.ndarray) -> StagedRows:
        """Stages 5-6 for the rows `pairs` of a prepared request."""
        cfg = prep.config
        with prep.timer.stage("masks"):
            work, masks, boxes_px = self._masks(prep.image, prep.pair_boxes(pairs), prep.grid, cfg)
        with prep.timer.stage("vae_encode"):
            conditioned = self.assets.unet_channels != self.assets.latent_channels
            masked_latents, source_latent = self._encode(work, masks, masked=conditioned, source=self.editor(cfg) == "sd-blend")
        return StagedRows(work, masks, boxes_px, self._rows(pairs, masks, masked_latents, source_latent, prep.hidden, cfg))

    def denoiser(self, cfg: EditConfig, timer: StageTimer, on_step, guidance=None) -> RowDenoiser:
        """The row-batched loop for cfg's steps and scheduler; `guidance` per row where the rows
        are several requests' (Editor.edit_batch), else cfg's."""
        scheduler = self.assets.make_scheduler(cfg.scheduler)
        unet = lambda **feeds: self.run_graph("unet", keep_on_device=True, **feeds)[Outputs.NOISE_PRED]  # noqa: E731
        return RowDenoiser(unet, scheduler, steps=cfg.steps, guidance=cfg.guidance if guidance is None else guidance,
                           max_batch=self.batch_limit("unet", cfg), timer=timer, on_step=on_step)

    def _rows(self, pairs: np.ndarray, masks, masked_latents, source_latent, hidden, cfg: EditConfig) -> DenoiseRows:
        """One denoise row per (anchor, size) pair; noise keyed by the pair (engine.noise).
        `masked_latents` None: a plain UNet; `source_latent` None: no blending."""
        f = self.assets.vae_scale_factor
        side = cfg.working_size // f
        shape = (self.assets.latent_channels, side, side)
        noise = np.stack([initial_noise(cfg.seed, int(k), int(m), shape) for k, m in pairs])
        # From here to the decoded images, arrays live where the sessions put them (numpy or
        # CuPy): no host copy inside the loop on GPU sessions.
        xp = array_module(masked_latents if masked_latents is not None else source_latent)
        mask_latent = None
        if masked_latents is not None:
            mask_latent = xp.asarray(np.ascontiguousarray(masks[:, None, ::f, ::f], dtype=np.float32))
        source, blend = None, None
        if source_latent is not None:
            source = xp.broadcast_to(source_latent, (len(pairs), *source_latent.shape[1:]))
            # a latent cell is generated when any of its pixels is in the box, so every box pixel can change
            touched = masks.reshape(len(pairs), side, f, side, f).max(axis=(2, 4)) >= 0.5
            blend = xp.asarray(touched[:, None].astype(np.float32))
        context = xp.broadcast_to(hidden[None], (len(pairs), *hidden.shape))  # (uncond, cond) per row
        return DenoiseRows(mask_latent, masked_latents, noise, context, source, blend)

    def decode(self, latents, work, masks, cfg: EditConfig) -> np.ndarray:
        """Stage 8: uint8 images [R, S, S, 3] of latents [R, 4, h, w], pasted back outside `masks`
        when cfg.paste_back."""
        decoded = image_ops.sd_to_uint8(self.run_chunked("vae_decoder", latents=latents)[Outputs.IMAGES])
        if cfg.paste_back:
            keep = masks[..., None] >= 0.5
            decoded = np.where(keep, decoded, image_ops.to_uint8(work)[None])
        return decoded

    def decode_pruning(self, latents, work, masks, boxes_px, cfg: EditConfig) -> np.ndarray:
        """A pruning phase's decode: `decode`, or with prune_decode 'crop' (and a decoder that
        takes crops) only each row's latent window around its box (ops.images.latent_windows),
        its pixels inside the mask over the working image; rows of one window size share a call."""
        minimum = self.assets.decoder_crop_min
        if cfg.prune_decode != "crop" or minimum is None:
            return self.decode(latents, work, masks, cfg)
        f = self.assets.vae_scale_factor
        windows = image_ops.latent_windows(boxes_px, f, int(latents.shape[-1]), PRUNE_CROP_MARGIN, minimum)
        xp = array_module(latents)
        images = np.repeat(image_ops.to_uint8(work)[None], len(latents), axis=0)
        for size in np.unique(windows[:, 2]):
            rows = np.flatnonzero(windows[:, 2] == size)
            cells = [(slice(t, t + size), slice(x, x + size)) for t, x in windows[rows, :2]]
            crops = xp.stack([latents[r, :, ys, xs] for r, (ys, xs) in zip(rows, cells)])
            decoded = image_ops.sd_to_uint8(self.run_chunked("vae_decoder", latents=crops)[Outputs.IMAGES])
            for row, pixels in zip(rows, decoded):
                y, x = windows[row, :2] * f
                window = (slice(y, y + size * f), slice(x, x + size * f))
                inside = masks[row][window][..., None] >= 0.5
                images[row][window] = np.where(inside, pixels, images[row][window])
        return images

    def _rank(self, candidates, source, prompt: str, cfg: EditConfig) -> RankScores:
        pixels = image_ops.clip_pixels([*candidates, source], self.assets.clip_image_size)
        image_embeds = self.run_chunked("clip_vision", pixels=pixels)[Outputs.IMAGE_EMBEDS]
        ids = self.assets.clip_tokenizer.encode(cfg.prompt_template.format(prompt=prompt)).ids
        text_embed = self.run_graph("clip_text", input_ids=ids[None])[Outputs.TEXT_EMBEDS][0]
        return rank_candidates(
            image_embeds[:-1],
            image_embeds[-1],
            text_embed,
            alpha=cfg.rank_alpha,
            beta=cfg.rank_beta,
            softmax=cfg.rank_softmax,
            top_t2i=cfg.rank_top_t2i,
        )

    def _pick_by_objective(self, scores: RankScores, images: np.ndarray, work: np.ndarray, prep: Prepared) -> RankScores:
        """The candidate with the lowest region loss L (the scorer region search uses) wins."""
        scorer = ClipScorer(self.clip_models(), prep.prompt, prep.source_caption, prep.config.prompt_template)
        total = scorer(None, np.asarray(images), work).total
        return dataclasses.replace(scores, chosen=int(np.argmin(total)), objective=total)

    # -- helpers -------------------------------------------------------------------------
    def run_chunked(self, graph: str, *, keep_on_device: bool = False, **feeds) -> dict:
        """run_graph in chunks of at most the graph's batch limit (the bundle's profile) rows."""
        run = functools.partial(self.run_graph, graph, keep_on_device=keep_on_device)
        return run_in_chunks(run, self.assets.batch_limits.get(graph), **feeds)

    def run_graph(self, graph: str, *, keep_on_device: bool = False, **feeds) -> dict[str, np.ndarray]:
        """Run one graph. Outputs come back as numpy, checked for NaN/Inf, unless
        keep_on_device: then GPU outputs stay on the device, unchecked until the loop ends."""
        outputs = self.sessions[graph].run(feeds)
        if not keep_on_device:
            outputs = {name: to_host(value) for name, value in outputs.items()}
        for name, value in outputs.items():
            if not on_device(value):
                check_finite(graph, name, value)
        return outputs


def validate_prompt(prompt) -> None:
    check_text(prompt, "prompt")
    if not prompt.strip():
        raise InputError("prompt is empty; give the edit to make, e.g. 'a bowl of strawberries'")


def check_text(text, what: str) -> None:
    """`text` is a str the tokenizers take: bytes that were not UTF-8 (argv decodes them to lone
    surrogates) are refused with their position."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = text[exc.start].encode("utf-8", "surrogateescape") if "\udc80" <= text[exc.start] <= "\udcff" else b""
        byte = f"byte 0x{raw[0]:02x}" if raw else f"character {text[exc.start]!r}"
        raise InputError(f"{what} is not valid UTF-8 text ({byte} at character {exc.start}); pass it as UTF-8") from None


def _mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask >= 0.5)
    if ys.size == 0:
        return (0, 0, -1, -1)
    return (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
