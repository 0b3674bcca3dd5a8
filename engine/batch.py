"""Several edits in one call: `Editor.edit_batch(requests)`, independent of any service framework.

Requests are grouped by what a shared denoising loop needs to agree on (`DenoiseKey`: steps,
scheduler, guidance on/off, working size). The candidates of a group's requests run as one UNet
batch (2 x sum(K) rows with guidance, each row with its own text context, noise and guidance
scale), in runs that fit the graphs' row cap (`EditPipeline.max_unet_rows`, a bundle's UNet
profile). Each result equals the request's own edit() within the batch tolerance. A request that
fails (bad image, bad prompt, bad override) fails alone: its slot in the returned list holds its
exception, the others complete.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from lredit.config import EditConfig
from lredit.errors import InputError

from .pipeline import EditPipeline, EditResult
from .timing import StageTimer

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

    @classmethod
    def of(cls, cfg: EditConfig) -> "DenoiseKey":
        return cls(steps=cfg.steps, scheduler=cfg.scheduler, guidance=cfg.do_guidance, working_size=cfg.working_size)


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
            cfg = request_config(pipeline, request.overrides)
        except InputError as exc:
            failures[index] = exc
            continue
        key = DenoiseKey.of(cfg)
        groups.setdefault(key, []).append(Planned(index, request, cfg, key))
    return list(groups.values()), failures


def request_config(pipeline: EditPipeline, overrides: Mapping[str, Any]) -> EditConfig:
    """The pipeline's config with a request's overrides; an unknown setting, or one these graphs
    cannot run, is an InputError naming it."""
    known = {f.name for f in dataclasses.fields(EditConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown edit setting(s) {unknown}; EditConfig has {sorted(known)}")
    cfg = pipeline.config.replace(**dict(overrides)) if overrides else pipeline.config
    pipeline.check_overrides(dict(overrides))
    return cfg


def chunks(group: Sequence[Planned], max_rows: int | None) -> list[list[Planned]]:
    """Consecutive runs of a group whose UNet rows (candidates x 2 with guidance) fit in one
    call of at most `max_rows` rows; a request never spans two runs."""
    out: list[list[Planned]] = []
    rows = 0
    for item in group:
        need = item.config.anchors * (2 if item.config.do_guidance else 1)
        if out and (max_rows is None or rows + need <= max_rows):
            out[-1].append(item)
            rows += need
        else:
            out.append([item])
            rows = need
    return out


def edit_batch(pipeline: EditPipeline, requests: Sequence[EditRequest]) -> list[EditResult | Exception]:
    """Run every request; result i is request i's EditResult or the exception it failed with.

    Per request: stages 1-7 (`prepare`); per run of requests that share a loop and fit the row
    cap: one denoising loop (`denoise_batch`, one UNet call per step); per request again:
    decode and rank (`finish`)."""
    groups, failures = plan(pipeline, requests)
    results: list[EditResult | Exception | None] = [None] * len(requests)
    for index, exc in failures.items():
        results[index] = exc
    for group in groups:
        for run in chunks(group, pipeline.max_unet_rows):
            ready = []
            for item in run:
                prep = _attempt(lambda: pipeline.prepare(item.request.image, item.request.prompt, item.request.source_caption, item.config))
                if isinstance(prep, Exception):
                    results[item.index] = prep
                else:
                    ready.append((item, prep))
            if not ready:
                continue
            log.info("edit_batch: %d request(s), %d candidates, one loop with %s", len(ready),
                     sum(len(p.size_index) for _, p in ready), run[0].key)
            shared = StageTimer()
            with shared.stage("denoise"):
                latents = _attempt(lambda: pipeline.denoise_batch([p for _, p in ready], shared))
            for n, (item, prep) in enumerate(ready):
                if isinstance(latents, Exception):  # the shared loop failed: every request in it did
                    results[item.index] = latents
                    continue
                prep.timer.absorb(shared)
                results[item.index] = _attempt(lambda: pipeline.finish(prep, latents[n]))
    return results  # type: ignore[return-value]  # every slot is filled above


def _attempt(step):
    """A request's own failure is its result; the batch goes on."""
    try:
        return step()
    except Exception as exc:
        log.warning("edit_batch: request failed: %s", exc)
        return exc
