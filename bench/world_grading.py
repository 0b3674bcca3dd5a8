"""Grading one edit of the shapes world against its truth: pure numpy, plus the judge's readings.

A case (lredit.world.cases.EditCase) names the source object, its box (end exclusive) and the
target; an edit result names the chosen box (inclusive pixel corners, at the working size). The
scene is drawn at the working size, so both live in the same pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

Reader = Callable[[np.ndarray, tuple[int, int, int, int]], tuple[str, str]]
"""(uint8 image [S, S, 3], box (x0, y0, x1, y1) end exclusive) -> (shape, colour) the judge reads."""

LOCALISED_IOU = 0.5
"""A chosen box localises the source object when its IoU with the object's box reaches this."""


@dataclass(frozen=True)
class Grade:
    """What one edit achieved."""

    iou: float
    localised: bool
    success: bool
    """The judge reads the target shape and colour inside the chosen box."""
    read_shape: str
    read_colour: str
    others_kept: float | None
    """Share of the scene's other objects the judge still reads as they were (None: no others)."""
    psnr_outside_db: float
    """PSNR of the result against the source outside the chosen box (inf where identical)."""

    def to_dict(self) -> dict:
        return asdict(self)


def exclusive(box_inclusive) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) inclusive -> (x0, y0, x1, y1) end exclusive."""
    x1, y1, x2, y2 = (int(v) for v in box_inclusive)
    return x1, y1, x2 + 1, y2 + 1


def box_iou(a, b) -> float:
    """IoU of two end-exclusive boxes (x0, y0, x1, y1)."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def psnr_outside(result: np.ndarray, source: np.ndarray, box) -> float:
    """PSNR (dB, peak 255) over the pixels outside the end-exclusive box; inf if they are equal."""
    keep = np.ones(result.shape[:2], dtype=bool)
    x0, y0, x1, y1 = box
    keep[y0:y1, x0:x1] = False
    if not keep.any():
        return float("inf")
    err = (result[keep].astype(np.float64) - source[keep].astype(np.float64)) ** 2
    mse = float(err.mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def grade(result: np.ndarray, source: np.ndarray, chosen_box, case, others, read: Reader) -> Grade:
    """`chosen_box` end exclusive; `others`: the scene's other objects (each with .box, .shape,
    .colour); `read` the judge."""
    iou = box_iou(chosen_box, case.region)
    shape, colour = read(result, chosen_box)
    kept = [read(result, o.box) == (o.shape, o.colour) for o in others]
    return Grade(
        iou=iou,
        localised=iou >= LOCALISED_IOU,
        success=(shape, colour) == (case.target_shape, case.target_colour),
        read_shape=shape,
        read_colour=colour,
        others_kept=float(np.mean(kept)) if kept else None,
        psnr_outside_db=psnr_outside(result, source, chosen_box),
    )


def summarise(grades: list[Grade]) -> dict:
    """Shares and means over one mode's cases."""
    kept = [g.others_kept for g in grades if g.others_kept is not None]
    finite = [g.psnr_outside_db for g in grades if np.isfinite(g.psnr_outside_db)]
    return {
        "cases": len(grades),
        "localised": float(np.mean([g.localised for g in grades])) if grades else 0.0,
        "success": float(np.mean([g.success for g in grades])) if grades else 0.0,
        "mean_iou": float(np.mean([g.iou for g in grades])) if grades else 0.0,
        "others_kept": float(np.mean(kept)) if kept else None,
        "psnr_outside_db": float(np.median(finite)) if finite else None,
    }


def size_agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Share of anchors (over all cases) where two modes chose the same size index."""
    same = [np.asarray(x) == np.asarray(y) for x, y in zip(a, b)]
    return float(np.concatenate(same).mean()) if same else 0.0
