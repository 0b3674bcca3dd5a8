"""The world's gate (issue #19, part 6): region search with the shipped world models must place its
chosen box on the source object of held-out cases, at thresholds set from the measured figures
with a margin; the same gate fails when the region choice is broken.

Measured (2026-12-04, AMD EPYC, torch 2.13 CPU) on held-out cases 0..15 at 10 steps and the
world's other settings (128 px, K = 9, paste-back, the pick by the region loss), chosen box
against the source object's box, with the shipped models of round two (UNet trained 9500 steps,
decoder fine-tuned, search pruning at 0.1/0.2; bench/RESULTS.md, "World, round two"):

| region choice | mean IoU | IoU >= 0.3 | IoU >= 0.5 (localised) | judge reads the target |
| --- | --- | --- | --- | --- |
| search (the default) | 0.310 | 9 / 16 | 0 / 16 | 5 / 16 |
| saliency order inverted (anchors on the least salient cells) | 0.073 | 1 / 16 | 0 / 16 | 1 / 16 |

(The first weights measured 0.317, 8, 2 and 1 for search; transposed anchors then 0.273, 6, 2, 1.
With search's pruning decoding latent windows, the world's setting since 2026-12-04: mean IoU
0.310, 9 at IoU >= 0.3 and 5 read by the judge again, Intel Xeon, torch 2.13 CPU, either decode.)
The gate asserts the box's overlap with the source and, since round two's models edit, that the
judge reads the target in some cases. Strict localisation is too rare here for a threshold with a
margin, and transposed anchors are not caught: in these scenes a transposed anchor often lands on
another object, which search then edits (bench/RESULTS.md, "World").
"""

import numpy as np
import pytest

from lredit.bench.world_eval import ModeRun, edit_case, judge_reader, world_config
from lredit.config import RegionMode
from lredit.engine.ops import anchors as anchor_ops
from lredit.engine.runtimes.reference.torch_backend import load_reference
from lredit.export.models import shipped_folder
from lredit.world.cases import Split, cases

GATE_CASES, GATE_STEPS = 16, 10
MIN_MEAN_IOU = 0.25  # measured 0.310: a margin of 0.06
MIN_OVERLAPPING = 6  # cases with IoU >= 0.3; measured 9: a margin of three cases
MIN_EDITED = 3  # cases the judge reads the target in; measured 5 (1 with the saliency inverted)


@pytest.fixture(scope="module")
def world():
    cfg = world_config("shapes", steps=GATE_STEPS)
    read = judge_reader(shipped_folder("shapes") / "judge")
    return load_reference("shapes", cfg), cases(Split.HELDOUT, GATE_CASES, size=cfg.working_size), read


def gate(world) -> tuple[float, int, int]:
    """(mean IoU of the chosen box with the source object's box, cases with IoU >= 0.3, cases
    the judge reads the target in)."""
    pipeline, todo, read = world
    run = ModeRun(pipeline, {"regions": RegionMode.SEARCH})
    rows = [edit_case(run, case, read, seed=case.index) for case in todo]
    iou = [r["iou"] for r in rows]
    return float(np.mean(iou)), sum(i >= 0.3 for i in iou), sum(bool(r["success"]) for r in rows)


def passes(mean_iou: float, overlapping: int, edited: int) -> bool:
    return mean_iou >= MIN_MEAN_IOU and overlapping >= MIN_OVERLAPPING and edited >= MIN_EDITED


def test_search_places_its_box_on_the_source_object(world):
    figures = gate(world)
    assert passes(*figures), figures


def test_the_gate_fails_when_the_anchors_ignore_the_saliency(world, monkeypatch):
    # A sort-direction defect: the least salient cells become the anchors.
    monkeypatch.setattr(anchor_ops, "rank_patches", lambda values: np.argsort(np.asarray(values), kind="stable"))
    figures = gate(world)
    assert not passes(*figures), figures
