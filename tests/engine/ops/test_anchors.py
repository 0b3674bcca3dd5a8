import numpy as np
import pytest

from lredit.engine.ops import anchors as A
from lredit.errors import InputError
from lredit.kernels import geometry as G


def test_cumulative_saliency_matches_the_code():
    att = np.array([0.1, 0.4, 0.2, 0.3])
    # sorted ascending 0.1, 0.2, 0.3, 0.4 -> cumsum of /1.0: .1, .3, .6, 1.0, back in patch order
    np.testing.assert_allclose(A.cumulative_saliency(att), [0.1, 1.0, 0.3, 0.6])


def test_cumulative_saliency_rejects_zero_mass():
    with pytest.raises(InputError, match="saliency sums to"):
        A.cumulative_saliency(np.zeros(4))


def _peaks(grid, cells):
    values = np.zeros(grid[0] * grid[1])
    for rank, (r, c) in enumerate(cells):
        values[r * grid[1] + c] = 100 - rank
    return values


def test_distinct_anchors_take_top_patches_anywhere():
    grid = (32, 32)
    values = _peaks(grid, [(0, 5), (31, 31), (16, 16), (3, 20)])
    got = A.select_anchors(values, grid, 3, distinct=True, margin=15)
    assert got.tolist() == [[0, 5], [31, 31], [16, 16]]


def test_authors_anchors_confine_to_centre_then_fill_with_duplicates():
    grid = (32, 32)
    # (16, 16) is the only peak inside [15, 16]^2 besides zero-valued centre cells.
    values = _peaks(grid, [(0, 5), (31, 31), (16, 16), (3, 20)])
    got = A.select_anchors(values, grid, 6, distinct=False, margin=15)
    centre = got[:4]
    assert set(map(tuple, centre.tolist())) == {(15, 15), (15, 16), (16, 15), (16, 16)}
    assert centre[0].tolist() == [16, 16]  # most salient centre patch first
    # only 4 centre patches exist: the code appends the top-ranked patches regardless of border
    assert got[4:].tolist() == [[0, 5], [31, 31]]
    dup = A.select_anchors(values, grid, 7, distinct=False, margin=15)
    assert dup[6].tolist() == [16, 16]  # a duplicate of the first centre anchor


def test_too_many_anchors_is_a_clear_error():
    with pytest.raises(InputError, match="anchors=17 requested but the 4x4 DINO feature map has only 16"):
        A.select_anchors(np.arange(16.0), (4, 4), 17, distinct=True, margin=0)


def test_boxes_clamped_at_border_and_axes():
    anchors = np.array([[2, 30]])  # row 2, col 30
    fixed = G.proposal_boxes(anchors, (4, 6), (32, 32), fix_axes=True)
    assert fixed[0].tolist() == [[26, 0, 31, 6], [24, 0, 31, 8]]  # x around col 30, y around row 2
    code = G.proposal_boxes(anchors, (4, 6), (32, 32), fix_axes=False)
    assert code[0].tolist() == [[0, 26, 6, 31], [0, 24, 8, 31]]  # transposed: the code's defect


def test_cells_to_pixels_and_masks_at_any_resolution():
    box = np.array([[0, 0, 31, 31], [4, 8, 12, 10]], dtype=np.float32)
    for size in (64, 256, 512, 200):
        px = G.cells_to_pixels(box, (32, 32), size)
        assert px[0].tolist() == [0, 0, size - 1, size - 1]
        assert px[1].tolist() == [int(np.ceil(c * (size - 1) / 31 - 1e-9)) for c in (4, 8, 12, 10)]
        masks = G.box_masks(px, size)
        assert masks.shape == (2, size, size)
        x1, y1, x2, y2 = px[1]
        assert masks[1].sum() == (x2 - x1 + 1) * (y2 - y1 + 1)
        assert masks[1, y1, x1] == 1 and masks[1, y2, x2] == 1
        assert masks[1, y1 - 1, x1] == 0 and masks[1, y2, x2 + 1] == 0
    assert G.cells_to_pixels(np.array([[4, 4, 8, 8]]), (32, 32), 256).tolist() == [[33, 33, 66, 66]]


def _chebyshev(anchors):
    d = np.abs(anchors[:, None] - anchors[None]).max(-1)
    np.fill_diagonal(d, 10**6)
    return d.min()


def test_anchor_spacing_skips_neighbours_greedily_by_saliency():
    grid = (16, 16)
    # A ridge of four neighbouring cells on row 10 (the shipped example's pattern), then two
    # isolated peaks: spacing 3 keeps the ridge's best cell and the cell 3 columns along it.
    values = _peaks(grid, [(10, 4), (10, 5), (10, 6), (10, 7), (2, 2), (12, 13), (10, 9)])
    assert A.select_anchors(values, grid, 4, distinct=True, margin=0, spacing=0).tolist() == [[10, 4], [10, 5], [10, 6], [10, 7]]
    got = A.select_anchors(values, grid, 4, distinct=True, margin=0, spacing=3)
    assert got.tolist() == [[10, 4], [10, 7], [2, 2], [12, 13]]
    assert _chebyshev(got) >= 3
    # (10, 9) is 2 columns from (10, 7): skipped; diagonal distance counts as the larger offset.
    got5 = A.select_anchors(values, grid, 3, distinct=True, margin=0, spacing=5)
    assert got5.tolist() == [[10, 4], [2, 2], [12, 13]]


def test_anchor_spacing_1_equals_plain_top_k():
    rng = np.random.default_rng(3)
    values = rng.random(64)
    plain = A.select_anchors(values, (8, 8), 9, distinct=True, margin=0, spacing=0)
    assert A.select_anchors(values, (8, 8), 9, distinct=True, margin=0, spacing=1).tolist() == plain.tolist()


def test_anchor_spacing_fills_up_with_top_patches_when_the_map_is_too_small():
    # 4x4 grid, spacing 3: at most 4 cells can be 3 apart ((0,0),(0,3),(3,0),(3,3)).
    values = np.arange(16.0)[::-1].copy()  # patch 0 most salient
    got = A.select_anchors(values, (4, 4), 6, distinct=True, margin=0, spacing=3)
    assert got[:4].tolist() == [[0, 0], [0, 3], [3, 0], [3, 3]]
    assert got[4:].tolist() == [[0, 1], [0, 2]]  # the most salient patches not yet taken
    assert len({tuple(a) for a in got.tolist()}) == 6


def test_anchor_spacing_bad_values_are_clear_errors():
    with pytest.raises(InputError, match="anchor_spacing=-1"):
        A.select_anchors(np.arange(16.0), (4, 4), 2, distinct=True, margin=0, spacing=-1)
    # The authors' rule has no spacing: the same anchors with or without it.
    values = _peaks((32, 32), [(16, 16), (15, 16)])
    assert np.array_equal(A.select_anchors(values, (32, 32), 4, distinct=False, margin=15, spacing=4),
                          A.select_anchors(values, (32, 32), 4, distinct=False, margin=15))


def test_config_spacing_engine_default_and_authors_zero():
    from lredit.config import EditConfig

    assert EditConfig().anchor_spacing == 4
    assert EditConfig.preset("authors").anchor_spacing == 0
    with pytest.raises(InputError, match="anchor_spacing"):
        EditConfig(anchor_spacing=-2).validated()


def test_caption_order_by_relevance_or_by_both_ranks():
    relevance = np.array([0.1, 0.9, 0.5, 0.8])  # the pool is given most salient first
    assert A.caption_order(relevance, "caption").tolist() == [1, 3, 2, 0]
    # ranks: saliency 0,1,2,3; relevance 3,0,2,1 -> sums 3,1,4,4 (ties: more salient first)
    assert A.caption_order(relevance, "both").tolist() == [1, 0, 2, 3]
    with pytest.raises(InputError, match="anchor_source 'dino' has no caption order"):
        A.caption_order(relevance, "dino")
