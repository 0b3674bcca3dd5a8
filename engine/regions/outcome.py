"""What a region mode returns: the K winners and the report of how they were chosen."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lredit.config import RegionMode


@dataclass(frozen=True)
class RegionsOutcome:
    """What report.json's `regions` holds."""

    mode: RegionMode
    chosen_size: np.ndarray
    """[K] chosen size index per anchor."""
    losses: list | None
    """[K][M]: each pair's final loss terms (dict with the terms and total), None where pruned;
    None altogether when nothing was scored (rgn mode)."""
    phases: list
    """Per phase: step reached, pairs alive, UNet rows run (and the scored totals [K][M])."""
    unet_rows: int
    searched: np.ndarray
    """[K, M] bool: pairs inpainted (at least partly)."""
    learn: list | None = None
    """Per-iteration mean loss when learning."""
    notes: list = field(default_factory=list)
    learned_rgn: object = None
    """learn: the RGN learned on this image (rgn_numpy.RgnParams), for --save-rgn; not reported."""

    def to_report(self) -> dict:
        return {
            "mode": self.mode.value,
            "chosen_size": [int(m) for m in self.chosen_size],
            "losses": self.losses,
            "phases": self.phases,
            "unet_rows": int(self.unet_rows),
            "searched": self.searched.astype(bool).tolist(),
            "learn": self.learn,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class ChosenRegions:
    """The K winners, one per anchor, ready for ranking."""

    work: np.ndarray
    images: np.ndarray
    """[K, S, S, 3] uint8."""
    boxes_px: np.ndarray
    """[K, 4] pixel boxes."""
    outcome: RegionsOutcome


def one_pass_pairs(sizes: np.ndarray) -> np.ndarray:
    """[K, 2] (anchor, size): one row per anchor."""
    return np.stack([np.arange(len(sizes)), np.asarray(sizes, dtype=np.int64)], axis=1)


def one_pass_chosen(m: int, pairs: np.ndarray, work, images, boxes_px, phases: list, unet_rows: int) -> ChosenRegions:
    """The rgn mode's result for `pairs` inpainted in one pass (alone, or beside other requests'
    rows in a shared loop: Editor.edit_batch)."""
    searched = np.zeros((len(pairs), m), dtype=bool)
    searched[pairs[:, 0], pairs[:, 1]] = True
    outcome = RegionsOutcome(RegionMode.RGN, pairs[:, 1], None, phases, unet_rows, searched)
    return ChosenRegions(work, images, boxes_px, outcome)
