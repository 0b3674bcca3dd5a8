"""Region search: every (anchor, size) pair inpainted (K x M rows); each anchor keeps the size with
the lowest loss L (the paper's objective, regions.scorer, on CLIP of the decoded pairs). The K
winners are then ranked by S as in rgn mode: no extra inpainting pass.

With pruning (default), successive halving: at `prune_fractions` of the schedule, x0 predicted
from the guided noise is decoded and scored, and only the best `prune_keep` share of every
anchor's live sizes continues. Noise is keyed by (seed, anchor, size), so a surviving pair's image
equals the same pair in an unpruned run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lredit.config import RegionMode
from lredit.engine.ops.timing import StageTimer
from lredit.engine.regions.interface import Inpainted, RegionJob, Scorer
from lredit.engine.regions.outcome import ChosenRegions, RegionsOutcome
from lredit.engine.regions.scorer import job_scorer


def all_pairs(k: int, m: int) -> np.ndarray:
    """[K*M, 2] (anchor, size), anchor-major."""
    return np.stack(np.divmod(np.arange(k * m), m), axis=1).astype(np.int64)


def prune_steps(total_steps: int, fractions) -> list[int]:
    """UNet-call indices at which to prune: round(f * total), kept inside 1..total-1, unique."""
    steps = {min(max(int(round(f * total_steps)), 1), total_steps - 1) for f in fractions}
    return sorted(s for s in steps if 1 <= s < total_steps)


def keep_best(pairs: np.ndarray, losses: np.ndarray, share: float) -> np.ndarray:
    """Indices (into `pairs`) of each anchor's best ceil(share x live) sizes, at least one;
    ties go to the smaller size index. Returned in the input order."""
    keep = []
    for anchor in np.unique(pairs[:, 0]):
        rows = np.nonzero(pairs[:, 0] == anchor)[0]
        order = rows[np.lexsort((pairs[rows, 1], losses[rows]))]
        keep.extend(order[: max(1, math.ceil(share * len(rows)))].tolist())
    return np.sort(np.asarray(keep, dtype=np.int64))


class Pruner:
    """The inpainter's prune hook at `steps`: scores the decoded x0 predictions of the live pairs
    and returns which continue."""

    def __init__(self, steps: list[int], pairs: np.ndarray, scorer: Scorer, share: float, shape, timer: StageTimer):
        self.steps, self.pairs, self.scorer, self.share, self.shape, self.timer = steps, pairs, scorer, share, shape, timer
        self.totals: list = []

    def __call__(self, step: int, live: np.ndarray, images: np.ndarray, work: np.ndarray) -> np.ndarray:
        with self.timer.stage("prune_score"):
            terms = self.scorer(self.pairs[live], images, work)
        total = np.asarray(terms.total, dtype=np.float64)
        self.totals.append(pair_table(self.shape, self.pairs[live], [float(v) for v in total]))
        return keep_best(self.pairs[live], total, self.share)


def search(job: RegionJob) -> ChosenRegions:
    """Score every (anchor, size) pair (pruned by successive halving unless config.prune is off);
    each anchor keeps its lowest-loss size."""
    scored = score_pairs(job, prune=job.config.prune)
    chosen = scored.totals.argmin(axis=1)  # first minimum: ties go to the smaller size
    return scored.winners(RegionMode.SEARCH, chosen)


@dataclass(frozen=True)
class ScoredPairs:
    """Every pair's inpaint and loss (inf where pruned), from one search run."""

    inp: Inpainted
    totals: np.ndarray
    """[K, M] total loss, inf where pruned."""
    losses: list
    phases: list
    notes: list

    def winners(self, mode: RegionMode, chosen: np.ndarray) -> ChosenRegions:
        """The K candidates at sizes `chosen` (each must have run to the end)."""
        k, m = self.totals.shape
        row_of = {int(r): i for i, r in enumerate(self.inp.live)}
        rows = [row_of[a * m + int(s)] for a, s in enumerate(chosen)]
        searched = np.ones((k, m), dtype=bool)
        outcome = RegionsOutcome(mode, np.asarray(chosen, dtype=np.int64), self.losses, self.phases, self.inp.unet_rows,
                                 searched, notes=self.notes)
        return ChosenRegions(self.inp.work, self.inp.images[rows], self.inp.boxes_px[self.inp.live[rows]], outcome)


def score_pairs(job: RegionJob, prune: bool) -> ScoredPairs:
    """Inpaint and score all K x M pairs (pruned mid-schedule when `prune` and M > 1)."""
    cfg, (k, m) = job.config, job.shape
    pairs = all_pairs(k, m)
    scorer = job_scorer(job)
    pruner = None
    if prune and m > 1:
        steps = prune_steps(job.inpainter.total_unet_calls(), cfg.prune_fractions)
        pruner = Pruner(steps, pairs, scorer, cfg.prune_keep, (k, m), job.timer)
    inp = job.inpainter.inpaint(pairs, pruner)
    with job.timer.stage("score"):
        terms = scorer(pairs[inp.live], inp.images, inp.work)
    total = np.full(k * m, np.inf)
    total[inp.live] = np.asarray(terms.total, dtype=np.float64)
    losses = pair_table((k, m), pairs[inp.live], [terms.entry(i) for i in range(len(inp.live))])
    phases = [dict(p) for p in inp.phases]
    for phase, totals in zip(phases, pruner.totals if pruner else []):
        phase["losses"] = totals
    return ScoredPairs(inp, total.reshape(k, m), losses, phases, list(getattr(scorer, "notes", [])))


def pair_table(shape, pairs: np.ndarray, values: list) -> list:
    """[K][M] nested list with `values` at `pairs`, None elsewhere."""
    table = [[None] * shape[1] for _ in range(shape[0])]
    for (a, s), v in zip(pairs.tolist(), values):
        table[a][s] = v
    return table
