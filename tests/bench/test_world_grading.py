"""Grading an edit against the world's truth: IoU, PSNR outside the box, the judge's verdicts."""

from dataclasses import dataclass

import numpy as np
import pytest

from lredit.bench.world_grading import box_iou, exclusive, grade, psnr_outside, size_agreement, summarise


@dataclass(frozen=True)
class Case:
    region: tuple
    target_shape: str = "triangle"
    target_colour: str = "green"


@dataclass(frozen=True)
class Obj:
    box: tuple
    shape: str
    colour: str


def test_iou_of_boxes_end_exclusive():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 10, 20, 20)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert exclusive((2, 3, 9, 9)) == (2, 3, 10, 10)


def test_psnr_counts_only_pixels_outside_the_box():
    src = np.zeros((16, 16, 3), np.uint8)
    out = src.copy()
    out[4:8, 4:8] = 255  # all the change inside the box
    assert psnr_outside(out, src, (4, 4, 8, 8)) == float("inf")
    out[0, 0] = 255  # one changed pixel outside: MSE = 255^2 / (256 - 16) per channel
    assert psnr_outside(out, src, (4, 4, 8, 8)) == pytest.approx(10 * np.log10(240), abs=1e-9)


def test_grade_reads_target_in_the_chosen_box_and_others_where_they_were():
    image = np.zeros((32, 32, 3), np.uint8)
    readings = {(0, 0, 10, 10): ("triangle", "green"), (20, 20, 30, 30): ("circle", "red")}
    read = lambda img, box: readings.get(tuple(box), ("square", "blue"))  # noqa: E731
    g = grade(image, image, (0, 0, 10, 10), Case((0, 0, 10, 12)), [Obj((20, 20, 30, 30), "circle", "red")], read)
    assert g.localised and g.success and g.others_kept == 1.0 and g.iou == pytest.approx(100 / 120)
    missed = grade(image, image, (12, 0, 20, 8), Case((0, 0, 10, 12)), [Obj((20, 20, 30, 30), "circle", "blue")], read)
    assert not missed.localised and not missed.success and missed.others_kept == 0.0
    s = summarise([g, missed])
    assert s["localised"] == 0.5 and s["success"] == 0.5 and s["others_kept"] == 0.5


def test_size_agreement_counts_anchors_over_cases():
    assert size_agreement([np.array([1, 2]), np.array([0])], [np.array([1, 3]), np.array([0])]) == pytest.approx(2 / 3)
