"""compat='authors' against the authors' own operations (vis.py, engine.py, models/model.py of
yuanze-lin/LearnableRegions), rebuilt here with torch: the mask drawn as mask[:, y1:y2, x1:x2] = 1,
crop and mask resized to 512 by torchvision's T.Resize on tensors (bilinear), the mask binarised at
0.5 by diffusers, and the anchors' border margin taken from max_window_size."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lredit.config import EditConfig
from lredit.engine.core.pipeline import EditPipeline
from lredit.engine.ops.images import resize_bilinear, square_crop, to_chw_unit
from lredit.kernels.geometry import box_masks

GRID = (32, 32)
# Chosen boxes in feature cells (x1, y1, x2, y2), as the RGN would pick them.
CELL_BOXES = np.array([[3, 5, 17, 19], [0, 0, 31, 31], [10, 2, 14, 30]], dtype=np.float32)


def _authors_masks(cell_boxes, crop_size: int, size: int) -> np.ndarray:
    """vis.py map_cooridates + ceil + get_mask_imgs, engine.py T.Resize(512), diffusers' binarise."""
    boxes = torch.ceil((crop_size - 1) / 31 * torch.from_numpy(cell_boxes))  # float32, as their boxes
    masks = torch.zeros(len(boxes), 1, crop_size, crop_size)
    for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
        masks[i, :, y1:y2, x1:x2] = 1
    resized = F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False)
    return (resized[:, 0] >= 0.5).float().numpy()


def test_box_masks_exclusive_end_is_the_authors_slice():
    boxes = np.array([[2, 3, 9, 7], [0, 0, 15, 15]])
    want = np.zeros((2, 16, 16), dtype=np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        want[i, y1:y2, x1:x2] = 1
    np.testing.assert_array_equal(box_masks(boxes, 16, exclusive_end=True), want)
    assert box_masks(boxes, 16)[0, 7, 9] == 1  # the engine's boxes stay inclusive


def test_authors_masks_end_excluded_and_resized_bilinearly(photo):
    cfg = EditConfig.preset("authors")
    work, masks, boxes_px = EditPipeline({}, None, cfg)._masks(photo, CELL_BOXES, GRID, cfg)
    want = _authors_masks(CELL_BOXES, cfg.dino_size, cfg.working_size)
    np.testing.assert_array_equal(masks, want)
    # 256 -> 512 doubles every pixel: the end column/row at 256 is left out, so 2 px at 512.
    x1, y1, x2, y2 = boxes_px[0].tolist()
    assert (x1, y1) == (2 * math.ceil(3 * 255 / 31), 2 * math.ceil(5 * 255 / 31))
    assert (x2, y2) == (2 * math.ceil(17 * 255 / 31) - 1, 2 * math.ceil(19 * 255 / 31) - 1)


def test_authors_image_is_the_crop_resized_bilinearly(photo):
    cfg = EditConfig.preset("authors")
    work, _, _ = EditPipeline({}, None, cfg)._masks(photo, CELL_BOXES, GRID, cfg)
    crop = torch.from_numpy(to_chw_unit(square_crop(photo, cfg.dino_size)))[None]
    resized = F.interpolate(crop, size=(cfg.working_size,) * 2, mode="bilinear", align_corners=False)[0]
    # Floats on 0..255, as the authors' [0, 1] tensor reaches diffusers (no uint8 rounding on the way).
    assert work.dtype == np.float32
    np.testing.assert_allclose(work / 255.0, resized.permute(1, 2, 0).numpy(), atol=1e-6)


@pytest.mark.parametrize("size", [64, 200, 512, 700])
def test_resize_bilinear_matches_torch(size):
    x = np.random.default_rng(3).uniform(0, 1, (3, 256, 256)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(x)[None], size=(size, size), mode="bilinear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(resize_bilinear(x, size), want, atol=1e-5)  # torch sums in another order


def test_authors_border_margin_is_max_window_size():
    """The code keeps anchors with w <= row, col <= 31 - w for w = max_window_size; with an even
    w = 14 its half-sizes are range(4, 15, 2) and max(half_sizes) + 1 = 15 would drop row 14."""
    cfg = EditConfig.preset("authors", half_sizes=tuple(range(4, 15, 2)), max_window=14, anchors=1)
    saliency = np.full(32 * 32, 1.0)
    saliency[14 * 32 + 16] = 50.0  # the top patch, on the margin row
    saliency[15 * 32 + 15] = 40.0  # the runner-up, inside either margin
    assert EditPipeline._anchors(saliency, GRID, cfg).tolist() == [[14, 16]]
    assert EditConfig.preset("authors").max_window == 15 and EditConfig().max_window == 15
