"""Anchors, proposals and masks as pure functions over arrays (no model, no backend).

Coordinates: the DINO patch grid has `rows x cols` cells; a patch index p sits at
(row, col) = divmod(p, cols). Boxes are (x1, y1, x2, y2) in feature cells, inclusive, with x
along columns, as torchvision's roi_align expects.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


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


def proposal_boxes(
    anchors: np.ndarray, half_sizes: tuple[int, ...], grid: tuple[int, int], *, fix_axes: bool
) -> np.ndarray:
    """[K, M, 4] float32 boxes (x1, y1, x2, y2) in feature cells, centred on each anchor and
    clamped to the map. fix_axes=False reproduces the code, which uses (row, col) as (x, y)."""
    rows, cols = grid
    anchors = np.asarray(anchors, dtype=np.int64).reshape(-1, 2)
    if fix_axes:
        cx, cy = anchors[:, 1], anchors[:, 0]
    else:
        cx, cy = anchors[:, 0], anchors[:, 1]
    s = np.asarray(half_sizes, dtype=np.int64)[None, :]
    x1 = np.clip(cx[:, None] - s, 0, cols - 1)
    y1 = np.clip(cy[:, None] - s, 0, rows - 1)
    x2 = np.clip(cx[:, None] + s, 0, cols - 1)
    y2 = np.clip(cy[:, None] + s, 0, rows - 1)
    return np.stack([x1, y1, x2, y2], axis=-1).astype(np.float32)


def cells_to_pixels(boxes: np.ndarray, grid: tuple[int, int], size: int) -> np.ndarray:
    """Map feature-cell boxes to inclusive pixel boxes on a size x size image, as the code does:
    cell 0..n-1 linearly onto pixel 0..size-1, rounded up."""
    rows, cols = grid
    boxes = np.asarray(boxes, dtype=np.float64)
    sx = (size - 1) / max(cols - 1, 1)
    sy = (size - 1) / max(rows - 1, 1)
    scale = np.array([sx, sy, sx, sy])
    # Round before ceil so that float noise (e.g. 31 * 255/31) does not add a pixel.
    return np.ceil(np.round(boxes * scale, 6)).astype(np.int64)


def box_masks(pixel_boxes: np.ndarray, size: int) -> np.ndarray:
    """[K, size, size] float32 masks, 1 inside each inclusive pixel box (1 = repaint)."""
    pixel_boxes = np.asarray(pixel_boxes, dtype=np.int64).reshape(-1, 4)
    coords = np.arange(size)
    x1, y1, x2, y2 = (pixel_boxes[:, i, None] for i in range(4))
    in_x = (coords[None, :] >= x1) & (coords[None, :] <= x2)
    in_y = (coords[None, :] >= y1) & (coords[None, :] <= y2)
    return (in_y[:, :, None] & in_x[:, None, :]).astype(np.float32)
