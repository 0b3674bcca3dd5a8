"""Box geometry the ROI-pool and mask kernels compute, as pure numpy: proposal boxes around the
anchors, feature cells to pixels, box masks. The engine's pipeline and the kernels' reference
both use these functions.

Boxes are (x1, y1, x2, y2), inclusive, with x along columns, as torchvision's roi_align expects;
anchors are (row, col) patches of the DINO grid.
"""

from __future__ import annotations

import numpy as np


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


def box_masks(pixel_boxes: np.ndarray, size: int, *, exclusive_end: bool = False) -> np.ndarray:
    """[K, size, size] float32 masks, 1 inside each pixel box (1 = repaint). Boxes are inclusive;
    exclusive_end=True leaves out the end row and column, as the authors' `mask[:, y1:y2, x1:x2] = 1`."""
    pixel_boxes = np.asarray(pixel_boxes, dtype=np.int64).reshape(-1, 4)
    coords = np.arange(size)
    x1, y1, x2, y2 = (pixel_boxes[:, i, None] for i in range(4))
    if exclusive_end:
        x2, y2 = x2 - 1, y2 - 1
    in_x = (coords[None, :] >= x1) & (coords[None, :] <= x2)
    in_y = (coords[None, :] >= y1) & (coords[None, :] <= y2)
    return (in_y[:, :, None] & in_x[:, None, :]).astype(np.float32)
