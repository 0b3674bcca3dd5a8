"""Graph calls over more rows than a graph's batch profile takes: split, run, concatenate.

A bundle's graphs declare the largest batch they were exported/built for (the `max` of the
TensorRT profile on the leading `batch`/`candidates` axis, recorded in the manifest); region
search runs K x M rows, so decode, CLIP and the VAE encoder go through here too.
"""

from __future__ import annotations

from typing import Callable, Mapping

from lredit.engine.ops.arrays import array_module


def profile_batch_limits(graphs: Mapping[str, object]) -> dict[str, int]:
    """Graph name -> largest leading-axis batch of its profile (graphs with a dynamic first axis);
    `graphs` is the typed manifest's (entries with `.profile`: input -> {min, opt, max})."""
    limits = {}
    for name, entry in graphs.items():
        shapes = list(entry.profile.values())
        maxima = [shape["max"][0] for shape in shapes if shape.get("max")]
        mins = [shape["min"][0] for shape in shapes if shape.get("min")]
        if maxima and maxima != mins:  # a dynamic leading axis
            limits[name] = int(min(maxima))
    return limits


def tightest(*limits: int | None) -> int | None:
    """The smallest positive limit (None/0 = no limit)."""
    given = [int(v) for v in limits if v]
    return min(given) if given else None


def run_in_chunks(run: Callable[..., dict], limit: int | None, **feeds) -> dict:
    """`run(**feeds)` with every feed split along axis 0 into chunks of at most `limit` rows;
    outputs concatenated along axis 0. One call when the rows fit."""
    rows = len(next(iter(feeds.values())))
    if not limit or rows <= limit:
        return run(**feeds)
    parts = [run(**{k: v[lo : lo + limit] for k, v in feeds.items()}) for lo in range(0, rows, limit)]
    xp = array_module(next(iter(parts[0].values())))
    return {name: xp.concatenate([p[name] for p in parts]) for name in parts[0]}
