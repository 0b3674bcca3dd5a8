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
    values: np.ndarray, grid: tuple[int, int], count: int, *, distinct: bool, margin: int, spacing: int = 0
) -> np.ndarray:
    """Pick `count` anchors as (row, col) int rows, most salient first.

    distinct=True: the `count` top patches anywhere (boxes are clamped at the border later), at
    least `spacing` cells apart (see `spaced_picks`; 0 = plain top-K).
    The authors' rule below has no spacing: `spacing` does not apply to it.
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
    if spacing < 0:
        raise InputError(f"anchor_spacing={spacing} must be >= 0 (cells between anchors; 0 = plain top-K)")
    if distinct:
        picks = spaced_picks(ranked, cols, count, spacing)
    else:
        r, c = np.divmod(ranked, cols)
        inside = (r >= margin) & (r <= rows - 1 - margin) & (c >= margin) & (c <= cols - 1 - margin)
        picks = ranked[inside][:count]
        if picks.size < count:
            picks = np.concatenate([picks, ranked[: count - picks.size]])
    return np.stack(np.divmod(picks, cols), axis=1).astype(np.int64)


def spaced_picks(ranked: np.ndarray, cols: int, count: int, spacing: int) -> np.ndarray:
    """Greedy by saliency: walk the patches from most to least salient and take one when its
    Chebyshev distance (max of row and column offsets, in cells) to every patch taken so far is at
    least `spacing`. When fewer than `count` patches can be that far apart, the rest are the most
    salient patches not yet taken (still distinct), so K is always honoured."""
    ranked = np.asarray(ranked, dtype=np.int64)
    if spacing <= 1:  # distinct cells are always >= 1 apart
        return ranked[:count]
    taken: list[int] = []
    rows_taken, cols_taken = np.empty(0, np.int64), np.empty(0, np.int64)
    for p in ranked:
        r, c = divmod(int(p), cols)
        if rows_taken.size and np.maximum(np.abs(rows_taken - r), np.abs(cols_taken - c)).min() < spacing:
            continue
        taken.append(int(p))
        rows_taken, cols_taken = np.append(rows_taken, r), np.append(cols_taken, c)
        if len(taken) == count:
            return np.asarray(taken, dtype=np.int64)
    chosen = set(taken)
    rest = [int(p) for p in ranked if int(p) not in chosen]
    return np.asarray(taken + rest[: count - len(taken)], dtype=np.int64)



def caption_order(relevance: np.ndarray, source: str) -> np.ndarray:
    """Order a pool of anchors (given most salient first) for anchor_source `source`: 'caption' by
    CLIP relevance to the caption, highest first; 'both' by the sum of the saliency rank and the
    relevance rank (ties: the more salient first). Returns indices into the pool."""
    relevance = np.asarray(relevance, dtype=np.float64).reshape(-1)
    by_relevance = np.argsort(-relevance, kind="stable")
    if source == "caption":
        return by_relevance
    if source != "both":
        raise InputError(f"anchor_source {source!r} has no caption order; expected 'caption' or 'both'")
    relevance_rank = np.empty(relevance.size, dtype=np.int64)
    relevance_rank[by_relevance] = np.arange(relevance.size)
    return np.argsort(np.arange(relevance.size) + relevance_rank, kind="stable")
