"""Anchors as pure functions over arrays (no model, no backend): saliency values, ranking and
the choice of K anchor patches. Boxes and masks around them: lredit.kernels.geometry.

Coordinates: the DINO patch grid has `rows x cols` cells; a patch index p sits at
(row, col) = divmod(p, cols).
"""

from __future__ import annotations

import numpy as np

from lredit.errors import InputError


def cumulative_saliency(cls_attention: np.ndarray) -> np.ndarray:
    """The code's saliency: sort ascending, divide by the sum, cumulative sum, back in patch order.

    Each patch gets the attention mass at or below its own value, so the ranking is the raw
    attention's (ties broken by patch order).
    """
    att = np.asarray(cls_attention, dtype=np.float64).reshape(-1)
    order = np.argsort(att, kind="stable")
    total = att.sum()
    if not np.isfinite(total) or total <= 0:
        raise InputError(f"DINO saliency sums to {total}; expected a positive finite attention mass")
    cumulative = np.cumsum(att[order] / total)
    values = np.empty_like(cumulative)
    values[order] = cumulative
    return values


def rank_patches(values: np.ndarray) -> np.ndarray:
    """Patch indices from most to least salient; ties keep the lower index first."""
    return np.argsort(-np.asarray(values), kind="stable")


def select_anchors(
    values: np.ndarray, grid: tuple[int, int], count: int, *, distinct: bool, margin: int
) -> np.ndarray:
    """Pick `count` anchors as (row, col) int rows, most salient first.

    distinct=True: the `count` top patches anywhere (boxes are clamped at the border later).
    distinct=False (the code): patches whose row and col lie in [margin, n-1-margin] first, then
    the top-ranked patches regardless of the border until `count` are taken (duplicates possible).
    """
    rows, cols = grid
    if values.size != rows * cols:
        raise InputError(f"saliency has {values.size} values for a {rows}x{cols} grid")
    if count > rows * cols:
        raise InputError(
            f"anchors={count} requested but the {rows}x{cols} DINO feature map has only "
            f"{rows * cols} patches; use --anchors {rows * cols} or fewer"
        )
    ranked = rank_patches(values)
    if distinct:
        picks = ranked[:count]
    else:
        r, c = np.divmod(ranked, cols)
        inside = (r >= margin) & (r <= rows - 1 - margin) & (c >= margin) & (c <= cols - 1 - margin)
        picks = ranked[inside][:count]
        if picks.size < count:
            picks = np.concatenate([picks, ranked[: count - picks.size]])
    return np.stack(np.divmod(picks, cols), axis=1).astype(np.int64)
