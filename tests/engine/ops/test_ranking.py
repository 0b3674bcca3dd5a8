import numpy as np

from lredit.engine.ops.ranking import rank_candidates


def _embeds(cos_text, cos_src):
    """Unit vectors whose cosine with e0 (text) and e1 (source) are given."""
    rows = []
    for t, s in zip(cos_text, cos_src):
        rest = np.sqrt(max(0.0, 1 - t * t - s * s))
        rows.append([t, s, rest])
    return np.array(rows), np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])


def test_score_is_weighted_softmax_and_argmax():
    img, src, txt = _embeds([0.30, 0.28, 0.25], [0.5, 0.9, 0.2])
    r = rank_candidates(img, src, txt, alpha=2.0, beta=1.0, softmax=True, top_t2i=3)
    np.testing.assert_allclose(r.t2i, [0.30, 0.28, 0.25], atol=1e-12)
    def sm(x):
        return np.exp(x - x.max()) / np.exp(x - x.max()).sum()

    expected = 2 * sm(np.array([0.30, 0.28, 0.25])) + sm(np.array([0.5, 0.9, 0.2]))
    np.testing.assert_allclose(r.score, expected, rtol=1e-12)
    assert r.chosen == 1  # highest combined score


def test_top3_guard_excludes_best_score_with_poor_t2i():
    # candidate 3 has the best i2i by far but the lowest t2i: the guard keeps it out.
    img, src, txt = _embeds([0.30, 0.29, 0.28, 0.10], [0.1, 0.1, 0.1, 0.99])
    raw = rank_candidates(img, src, txt, alpha=2.0, beta=1.0, softmax=False, top_t2i=0)
    assert raw.chosen == 3
    guarded = rank_candidates(img, src, txt, alpha=2.0, beta=1.0, softmax=False, top_t2i=3)
    assert guarded.chosen == 0 and guarded.eligible.tolist() == [0, 1, 2]
