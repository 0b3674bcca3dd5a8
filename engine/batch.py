"""Several edits in one call: `Editor.edit_batch(requests)`, independent of any service framework.

Requests are grouped by what a shared denoising loop needs to agree on (`DenoiseKey`: steps,
scheduler, guidance on/off, working size). A request that fails (bad image, bad prompt, bad
override) fails alone: its slot in the returned list holds its exception, the others complete.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .config import EditConfig
from .errors import InputError
from .pipeline import EditPipeline, EditResult

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
            cfg = request_config(pipeline.config, request.overrides)
        except InputError as exc:
            failures[index] = exc
            continue
        key = DenoiseKey.of(cfg)
        groups.setdefault(key, []).append(Planned(index, request, cfg, key))
    return list(groups.values()), failures


def request_config(base: EditConfig, overrides: Mapping[str, Any]) -> EditConfig:
    """`base` with a request's overrides; an unknown setting is an InputError naming it."""
    known = {f.name for f in dataclasses.fields(EditConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown edit setting(s) {unknown}; EditConfig has {sorted(known)}")
    return base.replace(**dict(overrides)) if overrides else base


def edit_batch(pipeline: EditPipeline, requests: Sequence[EditRequest]) -> list[EditResult | Exception]:
    """Run every request; result i is request i's EditResult or the exception it failed with."""
    groups, failures = plan(pipeline, requests)
    results: list[EditResult | Exception | None] = [None] * len(requests)
    for index, exc in failures.items():
        results[index] = exc
    for group in groups:
        log.info("edit_batch: %d request(s) with %s", len(group), group[0].key)
        for item in group:
            results[item.index] = _edit_one(pipeline, item.request)
    return results  # type: ignore[return-value]  # every slot is filled above


def _edit_one(pipeline: EditPipeline, request: EditRequest) -> EditResult | Exception:
    try:
        return pipeline.edit(request.image, request.prompt, request.source_caption, **dict(request.overrides))
    except Exception as exc:  # the request's own failure is its result; the batch goes on
        log.warning("edit_batch: request failed: %s", exc)
        return exc
