"""Several edits in one call: `Editor.edit_batch(requests)`, independent of any service framework.

Requests are grouped by what a shared denoising loop needs to agree on (`DenoiseKey`: steps,
scheduler, guidance on/off, working size, region mode, editor). In the one-pass region mode (`rgn`) the
candidates of a group's requests run as one row-batched denoiser (engine/denoise.py): one UNet
batch of 2 x sum(K) rows with guidance, each row with its own text context, noise and guidance
scale, chunked to the bundle's UNet profile like any edit. The search and learn modes batch each
request's K x M pairs themselves (with per-request pruning), so their requests run one by one.
Each result equals the request's own edit() within the batch tolerance. A request that fails (bad
image, bad prompt, bad override) fails alone: its slot holds its exception, the others complete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from lredit.config import EditConfig, RegionMode
from lredit.engine.core.denoise import DenoiseRows
from lredit.engine.core.pipeline import EditPipeline, EditResult
from lredit.engine.core.staged import Prepared, StagedRows
from lredit.engine.ops.arrays import check_finite
from lredit.engine.ops.timing import StageTimer
from lredit.engine.regions.outcome import one_pass_chosen, one_pass_pairs
from lredit.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditRequest:
    """One edit: what `EditPipeline.edit` takes, as a value."""

    image: Any
    """A path, encoded image bytes or a PIL image (what `images.load_image` reads)."""
    prompt: str
    source_caption: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """EditConfig fields for this request only (seed, anchors, steps, guidance, ...)."""


@dataclass(frozen=True)
class DenoiseKey:
    """What the requests of one denoising loop share. Everything else (seed, prompt, guidance
    scale, anchors) may differ from row to row."""

    steps: int
    scheduler: str
    guidance: bool
    working_size: int
    regions: RegionMode
    editor: str = "auto"
    """Blending rows and plain inpainting rows differ in what the loop does per step."""

    @classmethod
    def of(cls, cfg: EditConfig, regions: RegionMode) -> "DenoiseKey":
        return cls(steps=cfg.steps, scheduler=cfg.scheduler, guidance=cfg.do_guidance, working_size=cfg.working_size,
                   regions=regions, editor=cfg.editor)


@dataclass(frozen=True)
class Planned:
    """A request whose config resolved: its position in the batch, config and loop key."""

    index: int
    request: EditRequest
    config: EditConfig
    key: DenoiseKey


def plan(pipeline: EditPipeline, requests: Sequence[EditRequest]) -> tuple[list[list[Planned]], dict[int, Exception]]:
    """Resolve each request's config and group the requests by `DenoiseKey` (groups in order of
    their first request). A request whose overrides are invalid goes to the failures instead."""
    groups: dict[DenoiseKey, list[Planned]] = {}
    failures: dict[int, Exception] = {}
    for index, request in enumerate(requests):
        try:
            cfg = pipeline.config_for(request.overrides)
            mode = pipeline.region_mode(cfg, [])  # its warning is recorded when the request runs
        except InputError as exc:
            failures[index] = exc
            continue
        key = DenoiseKey.of(cfg, mode)
        groups.setdefault(key, []).append(Planned(index, request, cfg, key))
    return list(groups.values()), failures


def edit_batch(pipeline: EditPipeline, requests: Sequence[EditRequest]) -> list[EditResult | Exception]:
    """Run every request; result i is request i's EditResult or the exception it failed with."""
    groups, failures = plan(pipeline, requests)
    results: list[EditResult | Exception | None] = [None] * len(requests)
    for index, exc in failures.items():
        results[index] = exc
    for group in groups:
        if group[0].key.regions is RegionMode.RGN:
            for item, result in zip(group, _one_loop(pipeline, group)):
                results[item.index] = result
        else:
            for item in group:
                results[item.index] = _attempt(lambda: pipeline.edit(
                    item.request.image, item.request.prompt, item.request.source_caption, **dict(item.request.overrides)))
    return results  # type: ignore[return-value]  # every slot is filled above


@dataclass(frozen=True)
class StagedRequest:
    """A one-pass request after stages 1-6, waiting for the shared loop."""

    slot: int
    """Its position in the group."""
    prep: Prepared
    pairs: np.ndarray
    """[K, 2] (anchor, the RGN's size)."""
    staged: StagedRows

    @property
    def guidance(self) -> float:
        return self.prep.config.guidance


@dataclass(frozen=True)
class SharedLoop:
    """The denoised latents of every staged request's rows, in order."""

    latents: object
    total_steps: int


def _one_loop(pipeline: EditPipeline, group: Sequence[Planned]) -> list[EditResult | Exception]:
    """One-pass requests sharing one denoising loop: stages 1-6 per request, the loop over all
    their rows, then decode and rank per request."""
    out: list[EditResult | Exception | None] = [None] * len(group)
    ready: list[StagedRequest] = []
    for n, item in enumerate(group):
        staged = _attempt(lambda: _stage(pipeline, n, item))
        if isinstance(staged, Exception):
            out[n] = staged
        else:
            ready.append(staged)
    if not ready:
        return out  # type: ignore[return-value]
    log.info("edit_batch: %d request(s), %d candidates in one loop (%s)", len(ready), sum(len(r.pairs) for r in ready), group[0].key)
    cfg = ready[0].prep.config
    shared = StageTimer()
    with shared.stage("denoise"):
        loop = _attempt(lambda: _denoise(pipeline, cfg, ready, shared))
    bounds = np.cumsum([0, *(len(r.pairs) for r in ready)])
    for request, lo, hi in zip(ready, bounds[:-1], bounds[1:]):
        if isinstance(loop, Exception):  # the shared loop failed: every request in it did
            out[request.slot] = loop
            continue
        request.prep.timer.absorb(shared)
        out[request.slot] = _attempt(lambda: _finish(pipeline, request, loop.latents[lo:hi], loop.total_steps))
    return out  # type: ignore[return-value]


def _stage(pipeline: EditPipeline, slot: int, item: Planned) -> StagedRequest:
    req = item.request
    prep = pipeline.prepare(req.image, req.prompt, req.source_caption, item.config)
    pipeline.region_mode(item.config, prep.warnings)  # the same warning edit() records
    pairs = one_pass_pairs(prep.size_index)
    return StagedRequest(slot, prep, pairs, pipeline.inpaint_rows(prep, pairs))


def _denoise(pipeline: EditPipeline, cfg: EditConfig, ready: Sequence[StagedRequest], timer: StageTimer) -> SharedLoop:
    joined = DenoiseRows.join([r.staged.rows for r in ready])
    guidance = np.concatenate([np.full(len(r.pairs), r.guidance, np.float32) for r in ready])
    den = pipeline.denoiser(cfg, timer, None, guidance=guidance)
    den.start(joined)
    latents = den.run()
    check_finite("denoise", "latents", latents)
    return SharedLoop(latents, den.total_steps)


def _finish(pipeline: EditPipeline, request: StagedRequest, latents, total_steps: int) -> EditResult:
    prep, staged, pairs = request.prep, request.staged, request.pairs
    with prep.timer.stage("vae_decode"):
        images = pipeline.decode(latents, staged.work, staged.masks, prep.config)
    rows_run = len(pairs) * (2 if prep.config.do_guidance else 1) * total_steps
    phases = [{"step": total_steps, "pairs_alive": len(pairs), "rows_run": rows_run}]
    chosen = one_pass_chosen(prep.shape[1], pairs, staged.work, images, staged.boxes_px, phases, rows_run)
    return pipeline.finish(prep, chosen)


def _attempt(step):
    """A request's own failure is its result; the batch goes on."""
    try:
        return step()
    except Exception as exc:
        log.warning("edit_batch: request failed: %s", exc)
        return exc
