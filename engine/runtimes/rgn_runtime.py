"""Which RGN a pipeline runs. A bundle's `rgn` graph holds the weights it was exported with; a
loaded checkpoint (`--rgn`) or a learned RGN runs on the numpy RGN instead (its `rgn` session),
and its projection (`conv.*`) feeds ROI pooling, so head and projection always belong together."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from lredit.engine.core.pipeline import EditPipeline
from lredit.engine.ops.rgn_numpy import NumpyRgnSession, RgnParams
from lredit.errors import InputError
from lredit.rgn_checkpoint import load_rgn

log = logging.getLogger(__name__)


def with_rgn(pipeline: EditPipeline, params: RgnParams, notes: tuple[str, ...] = ()) -> EditPipeline:
    """A new pipeline that runs `params`: the numpy RGN for the `rgn` stage, its projection for
    pooling (`pipeline` is unchanged)."""
    cfg = pipeline.config
    if (params.sizes, params.roi_size) != (len(cfg.half_sizes), cfg.roi_size) or params.channels != cfg.proj_channels:
        raise InputError(
            f"the RGN takes M={params.sizes}, c={params.channels}, l={params.roi_size}; this pipeline has "
            f"M={len(cfg.half_sizes)}, c={cfg.proj_channels}, l={cfg.roi_size}"
        )
    assets = dataclasses.replace(
        pipeline.assets,
        projection_weight=params.projection_weight,
        projection_bias=params.projection_bias,
        rgn=params,
        notes=(*pipeline.assets.notes, *notes),
    )
    return pipeline.with_sessions({**pipeline.sessions, "rgn": NumpyRgnSession(params)}, assets)


def with_rgn_checkpoint(pipeline: EditPipeline, path: Path) -> EditPipeline:
    """A new pipeline running a checkpoint (safetensors without torch, `.pt` with torch). A
    head-only file keeps the pipeline's current (seeded) projection, and every edit's warnings say so."""
    cfg = pipeline.config
    loaded = load_rgn(
        Path(path),
        (pipeline.assets.projection_weight, pipeline.assets.projection_bias),
        sizes=len(cfg.half_sizes),
        channels=cfg.proj_channels,
        roi_size=cfg.roi_size,
    )
    sourced = pipeline.with_sessions(assets=dataclasses.replace(pipeline.assets, sources={**pipeline.assets.sources, "rgn": str(path)}))
    log.info("RGN from %s (%s)", path, "head + projection" if loaded.has_projection else "head only")
    return with_rgn(sourced, loaded.params, loaded.warnings)
