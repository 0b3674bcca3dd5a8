"""world_editor's truth box: a square around the source object, in the cells the engine's boxes use."""

import numpy as np
import pytest

from lredit.bench.world_editor import truth_cells
from lredit.kernels.geometry import cells_to_pixels


@pytest.mark.parametrize("region", [(10, 20, 40, 45), (0, 0, 22, 30), (100, 90, 128, 128), (60, 60, 70, 64)])
def test_the_truth_box_holds_the_object_and_is_grow_times_its_longer_side(region):
    grid, size, grow = (32, 32), 128, 1.3
    x0, y0, x1, y1 = cells_to_pixels(truth_cells(region, grow, grid, size), grid, size)
    assert x0 <= region[0] and y0 <= region[1] and x1 + 1 >= region[2] - 1 and y1 + 1 >= region[3] - 1
    cell = (size - 1) / 31
    want = max(region[2] - region[0], region[3] - region[1]) * grow
    for side in (x1 - x0, y1 - y0):
        clipped = side < want - 2 * cell  # at the image's edge the square is cut
        assert clipped or abs(side - want) <= 2 * cell + 1
    assert 0 <= min(x0, y0) and max(x1, y1) <= size - 1
    assert np.isfinite([x0, y0, x1, y1]).all()
