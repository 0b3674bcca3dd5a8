"""Records torchvision.ops.roi_align on a grid of cases into tests/data/roi_align_torchvision.npz,
for tests/test_roi_pool.py to hold the numpy reference to (<= 1e-5) where torchvision cannot be
installed beside the project's torch (torch 2.13 CPU; torchvision's wheel needs its own torch).

Run it in a separate venv that has torch + torchvision (on these machines:
`pip install torch==2.14.1 torchvision==0.29.1 numpy`):

    python kernels/record_torchvision_cases.py tests/data/roi_align_torchvision.npz

Cases: aligned False/True, sampling ratio adaptive/1/2/4, boxes inside, touching and crossing the
border, 1-cell and zero-size boxes, several map shapes and output sizes. Standalone on purpose:
it imports torch, torchvision and numpy only.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torchvision
from torchvision.ops import roi_align


def cases(rng):
    for height, width in ((7, 9), (16, 16), (12, 20), (5, 12)):
        for output_size in (1, 3, 8):
            for aligned in (False, True):
                for sampling_ratio in (-1, 1, 2, 4):
                    for spatial_scale in (1.0, 0.125):
                        features = rng.standard_normal((2, height, width)).astype(np.float32)
                        boxes = [
                            [0, 0, width - 1, height - 1],            # the whole map
                            [2, 1, 2, 1],                             # one cell / zero size
                            [-3, -2, 4, 3],                           # crossing the top-left border
                            [width - 3, height - 2, width + 4, height + 5],  # crossing bottom-right
                            [width - 1, 0, width - 1, height - 1],    # touching the right edge
                        ]
                        for _ in range(3):
                            x1, y1 = rng.uniform(-2, width), rng.uniform(-2, height)
                            boxes.append([x1, y1, x1 + rng.uniform(0, width), y1 + rng.uniform(0, height)])
                        boxes = (np.asarray(boxes, dtype=np.float32) / spatial_scale).astype(np.float32)
                        yield features, boxes, output_size, aligned, sampling_ratio, spatial_scale


def main(out: str) -> int:
    rng = np.random.default_rng(20261125)
    record = {"versions": np.array([torch.__version__, torchvision.__version__])}
    for i, (features, boxes, size, aligned, ratio, scale) in enumerate(cases(rng)):
        rois = torch.cat([torch.zeros(len(boxes), 1), torch.from_numpy(boxes)], dim=1)
        pooled = roi_align(torch.from_numpy(features)[None], rois, output_size=size, spatial_scale=scale,
                           sampling_ratio=ratio, aligned=aligned)
        record[f"{i}/features"] = features
        record[f"{i}/boxes"] = boxes
        record[f"{i}/params"] = np.array([size, int(aligned), ratio, scale], dtype=np.float64)
        record[f"{i}/pooled"] = pooled.numpy()
    np.savez_compressed(out, **record)
    print(f"recorded {i + 1} cases with torch {torch.__version__}, torchvision {torchvision.__version__} into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/roi_align_torchvision.npz"))
