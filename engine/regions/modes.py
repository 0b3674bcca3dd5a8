"""Region modes: how each anchor's box size is chosen (EditConfig.regions).

- rgn: the RGN's choice, one pass of K inpaints (here).
- search: every (anchor, size) pair inpainted and scored, pruned by successive halving
  (regions.search).
- learn: the RGN trained on this image from the pairs' rewards (regions.learn).

Each mode gets a `RegionJob` (regions.interface): an inpainter and CLIP graphs, never the pipeline.
"""

from __future__ import annotations

import numpy as np

from lredit.config import EditConfig, RegionMode
from lredit.engine.regions.interface import RegionJob
from lredit.engine.regions.learn import learn
from lredit.engine.regions.outcome import ChosenRegions, one_pass_chosen, one_pass_pairs
from lredit.engine.regions.search import search
from lredit.errors import InputError


def resolve_mode(cfg: EditConfig, has_checkpoint: bool, search_blocker: str | None, warnings: list) -> RegionMode:
    """config.regions, or by default search without an RGN checkpoint and rgn with one (rgn also
    where search cannot run, `search_blocker` saying why, with a warning). An explicit mode that
    cannot run is an error."""
    mode = cfg.region_mode(has_checkpoint)
    if mode is RegionMode.RGN or search_blocker is None:
        return mode
    if cfg.regions is not None:
        raise InputError(f"--regions {mode.value} cannot run: {search_blocker}")
    warnings.append(f"regions: one-pass rgn with a seeded RGN, because search cannot run: {search_blocker}")
    return RegionMode.RGN


def choose_regions(mode: RegionMode, job: RegionJob, rgn_sizes: np.ndarray) -> ChosenRegions:
    if mode is RegionMode.RGN:
        return one_pass(job, rgn_sizes)
    if mode is RegionMode.SEARCH:
        return search(job)
    return learn(job)


def one_pass(job: RegionJob, sizes: np.ndarray) -> ChosenRegions:
    """Today's edit: one row per anchor at the given size."""
    pairs = one_pass_pairs(sizes)
    inp = job.inpainter.inpaint(pairs)
    return one_pass_chosen(job.shape[1], pairs, inp.work, inp.images, inp.boxes_px, inp.phases, inp.unet_rows)
