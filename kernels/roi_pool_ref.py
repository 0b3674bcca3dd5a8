"""Numpy reference of the fused multi-size ROI pool (the runtime's CPU path).

`roi_align` follows torchvision.ops.roi_align exactly (avg pooling, `aligned`, adaptive or fixed
sampling ratio, samples beyond one cell outside the map contribute 0, clamped bilinear at the
edge). Bilinear sampling is separable, so each box becomes two small interpolation matrices
Ay [l, H] and Ax [l, W] and the pool is one contraction out = Ay @ F @ Ax^T / count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import box_masks, proposal_boxes

LAYOUTS = ("anchor", "authors")


@dataclass(frozen=True)
class PoolSpec:
    """What one launch of kernels/roi_pool.cu computes, besides its arrays."""

    out_size: int
    """l: the RGN's ROI size."""
    spatial_scale: float = 1.0
    sampling_ratio: int = -1
    """-1: adaptive, ceil(roi / l) samples per bin side (torchvision's default)."""
    aligned: bool = False
    swap_axes: bool = False
    """The authors' code: anchor (row, col) used as (x, y)."""
    layout: str = "anchor"
    fused: bool = False
    """Pool the raw d-channel tokens, then project (reads tokens once); else project, then pool."""

    def roi_kwargs(self) -> dict:
        return dict(spatial_scale=self.spatial_scale, sampling_ratio=self.sampling_ratio, aligned=self.aligned)


def _axis_weights(start: np.ndarray, length: np.ndarray, bins: int, grid: np.ndarray, size: int) -> np.ndarray:
    """[N, bins, size] summed bilinear weights of the grid samples of each bin along one axis."""
    n = start.shape[0]
    g_max = int(grid.max())
    bin_len = length / bins
    b = np.arange(bins, dtype=np.float64)[None, :, None]
    i = np.arange(g_max, dtype=np.float64)[None, None, :]
    g = grid[:, None, None].astype(np.float64)
    used = i < g
    g = np.maximum(g, 1.0)
    pos = start[:, None, None] + b * bin_len[:, None, None] + (i + 0.5) * bin_len[:, None, None] / g
    outside = (pos < -1.0) | (pos > size)
    pos = np.maximum(pos, 0.0)
    low = np.floor(pos).astype(np.int64)
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    pos = np.where(at_edge, low.astype(np.float64), pos)
    frac = pos - low
    keep = (used & ~outside).astype(np.float64)
    weights = np.zeros((n, bins, size), dtype=np.float64)
    rows = np.broadcast_to(np.arange(n)[:, None, None], low.shape)
    cols = np.broadcast_to(np.arange(bins)[None, :, None], low.shape)
    np.add.at(weights, (rows, cols, low), (1.0 - frac) * keep)
    np.add.at(weights, (rows, cols, high), frac * keep)
    return weights


def roi_align(
    features: np.ndarray,
    boxes: np.ndarray,
    output_size: int,
    *,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> np.ndarray:
    """features [C, H, W], boxes [N, 4] (x1, y1, x2, y2) -> [N, C, l, l] (float32 out)."""
    feats = np.asarray(features, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    _, height, width = feats.shape
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (boxes[:, i] * spatial_scale - offset for i in range(4))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = np.maximum(roi_w, 1.0), np.maximum(roi_h, 1.0)
    if sampling_ratio > 0:
        grid_h = grid_w = np.full(boxes.shape[0], sampling_ratio, dtype=np.int64)
    else:
        grid_h = np.ceil(roi_h / output_size).astype(np.int64)
        grid_w = np.ceil(roi_w / output_size).astype(np.int64)
    # torchvision divides by max(grid_h * grid_w, 1); a zero-size aligned box samples nothing.
    count = np.maximum(grid_h * grid_w, 1).astype(np.float64)
    ay = _axis_weights(y1, roi_h, output_size, grid_h, height)
    ax = _axis_weights(x1, roi_w, output_size, grid_w, width)
    out = np.einsum("nph,chw,nqw->ncpq", ay, feats, ax, optimize=True)
    return (out / count[:, None, None, None]).astype(np.float32)


def sample_coverage(boxes: np.ndarray, shape: tuple[int, int], output_size: int, **kwargs) -> np.ndarray:
    """[N, l, l]: roi_align of an all-ones map, i.e. the share of samples that fall on the map.
    A bias added before pooling contributes bias * coverage (samples off the map add 0)."""
    ones = np.ones((1, *shape), dtype=np.float64)
    return roi_align(ones, boxes, output_size, **kwargs)[:, 0]


def arrange(pooled: np.ndarray, anchors: int, sizes: int, layout: str) -> np.ndarray:
    """[K*M, c, l, l] pooled in (anchor, size) order -> RGN input [K, M*c, l, l].

    'anchor': anchor k gets its own M maps, size-major on channels.
    'authors': the code stacks [M, K, c, l, l] and reshapes without a permute (mixes anchors).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is unknown; expected one of {LAYOUTS}")
    _, c, lh, lw = pooled.shape
    per_anchor = pooled.reshape(anchors, sizes, c, lh, lw)
    if layout == "authors":
        per_anchor = np.ascontiguousarray(per_anchor.transpose(1, 0, 2, 3, 4))
    return per_anchor.reshape(anchors, sizes * c, lh, lw)


def pool_proposals(
    features: np.ndarray,
    boxes: np.ndarray,
    output_size: int,
    *,
    layout: str = "anchor",
    **roi_kwargs,
) -> np.ndarray:
    """Projected features [c, H, W], boxes [K, M, 4] -> RGN input [K, M*c, l, l]."""
    anchors, sizes = boxes.shape[:2]
    pooled = roi_align(features, boxes.reshape(-1, 4), output_size, **roi_kwargs)
    return arrange(pooled, anchors, sizes, layout)


def pool_proposals_fused(
    tokens: np.ndarray,
    grid: tuple[int, int],
    weight: np.ndarray,
    bias: np.ndarray,
    boxes: np.ndarray,
    output_size: int,
    *,
    layout: str = "anchor",
    **roi_kwargs,
) -> np.ndarray:
    """Raw DINO tokens [H*W, d] + 1x1 projection (weight [c, d], bias [c]) -> [K, M*c, l, l].

    Pooling is linear, so it runs on the d-channel map first and the projection after; the bias
    enters scaled by each bin's sample coverage, as if it had been added before pooling."""
    height, width = grid
    anchors, sizes = boxes.shape[:2]
    flat = boxes.reshape(-1, 4)
    raw = np.asarray(tokens, dtype=np.float64).T.reshape(-1, height, width)
    pooled_raw = roi_align(raw, flat, output_size, **roi_kwargs).astype(np.float64)
    projected = np.einsum("cd,ndpq->ncpq", np.asarray(weight, dtype=np.float64), pooled_raw)
    coverage = sample_coverage(flat, (height, width), output_size, **roi_kwargs).astype(np.float64)
    projected += np.asarray(bias, dtype=np.float64)[None, :, None, None] * coverage[:, None]
    return arrange(projected.astype(np.float32), anchors, sizes, layout)


def project_tokens(tokens: np.ndarray, grid: tuple[int, int], weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Raw DINO tokens [H*W, d] -> projected map [c, H, W] (the 1x1 conv)."""
    height, width = grid
    out = np.asarray(tokens, dtype=np.float32) @ np.asarray(weight, dtype=np.float32).T + bias
    return np.ascontiguousarray(out.T.reshape(-1, height, width)).astype(np.float32)


def roi_pool_anchors(
    tokens: np.ndarray,
    grid: tuple[int, int],
    anchors: np.ndarray,
    half_sizes,
    weight: np.ndarray,
    bias: np.ndarray,
    spec: PoolSpec,
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's whole function: raw tokens [H*W, d], anchors [K, 2] (row, col), M half-sizes
    -> (RGN input [K, M*c, l, l] float32, clamped boxes [K, M, 4] float32 in cells)."""
    boxes = proposal_boxes(anchors, tuple(half_sizes), grid, fix_axes=not spec.swap_axes)
    if spec.fused:
        pooled = pool_proposals_fused(tokens, grid, weight, bias, boxes, spec.out_size, layout=spec.layout,
                                      **spec.roi_kwargs())
    else:
        projected = project_tokens(tokens, grid, weight, bias)
        pooled = pool_proposals(projected, boxes, spec.out_size, layout=spec.layout, **spec.roi_kwargs())
    return pooled, boxes


def rasterise_masks(pixel_boxes: np.ndarray, size: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The mask kernel's function: inclusive pixel boxes [K, 4] -> (masks [K, S, S], latent
    masks [K, S/f, S/f], the pixel mask at every f-th pixel), float32, 1 = repaint."""
    masks = box_masks(pixel_boxes, size)
    return masks, np.ascontiguousarray(masks[:, ::factor, ::factor][:, : size // factor, : size // factor])
