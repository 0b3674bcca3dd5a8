"""Region mode `learn`: the RGN trained on this image from the pairs' rewards (regions-obj's learn
core: exact expected-loss gradient, Adam, `learn_iterations` steps at `learn_lr`)."""

from __future__ import annotations

import dataclasses

from lredit.config import RegionMode
from lredit.engine.ops.rgn_learning import learn_sizes
from lredit.engine.regions.interface import RegionJob
from lredit.engine.regions.outcome import ChosenRegions
from lredit.engine.regions.search import score_pairs
from lredit.errors import InputError


def learn(job: RegionJob) -> ChosenRegions:
    """Every pair's loss, scored once by an unpruned search (the exact gradient needs all M
    sizes); the RGN trained on them; then the learned RGN's choice per anchor, its image taken
    from the pairs already inpainted."""
    if job.rgn is None:
        raise InputError("--regions learn needs the RGN's weights in numpy (a bundle's rgn.safetensors, --rgn, or the torch reference's)")
    if job.shape[1] < 2:
        raise InputError(f"--regions learn needs at least 2 box sizes to choose between (got M={job.shape[1]}); "
                         "give more --half-sizes or use --regions rgn")
    scored = score_pairs(job, prune=False)
    with job.timer.stage("learn"):
        result = learn_sizes(job.pooled, job.rgn, scored.totals, iterations=job.config.learn_iterations, lr=job.config.learn_lr)
    chosen = scored.winners(RegionMode.LEARN, result.choices)
    outcome = dataclasses.replace(chosen.outcome, learn=[float(v) for v in result.mean_loss], learned_rgn=result.params)
    return dataclasses.replace(chosen, outcome=outcome)
