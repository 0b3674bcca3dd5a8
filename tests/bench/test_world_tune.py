"""The tuning study's replay: a policy picks, per anchor, the lowest-L size under its weights, then
one winner by the objective or by CLIP's ranking; the grade is that pair's."""

import numpy as np

from lredit.bench.world_tune import PairTable, replay, study
from lredit.config import EditConfig


def table(clip, str_, dir_, localised, success, embeds=None):
    k, m = np.shape(clip)
    rng = np.random.default_rng(0)
    e = rng.normal(size=(k, m, 4)) if embeds is None else embeds
    terms = {"clip": np.asarray(clip, float), "str": np.asarray(str_, float), "dir": np.asarray(dir_, float)}
    return PairTable(terms={False: terms, True: terms}, embeds={False: e, True: e}, source_embed=rng.normal(size=4),
                     text_embed=rng.normal(size=4), localised=np.asarray(localised), success={False: np.asarray(success),
                                                                                              True: np.asarray(success)})


CFG = EditConfig(anchors=2)
# Two anchors, two sizes. Under L_clip alone anchor 1 size 0 wins (0.1); under L_dir alone anchor 0
# size 1 wins (0.2). Only (0, 1) localises and succeeds.
T = table(clip=[[0.9, 0.8], [0.1, 0.7]], str_=[[0, 0], [0, 0]], dir_=[[0.9, 0.2], [0.9, 0.9]],
          localised=[[False, True], [False, False]], success=[[False, True], [False, False]])


def test_the_weights_choose_the_pair():
    assert replay(T, (1, 0, 0), "objective", False, 2, CFG) == (False, False)
    assert replay(T, (0, 0, 1), "objective", False, 2, CFG) == (True, True)
    # only the first anchor: its best size under L_clip is size 1, the good pair
    assert replay(T, (1, 0, 0), "objective", False, 1, CFG) == (True, True)


def test_the_ranking_pick_follows_clip_text_similarity():
    text = np.array([1.0, 0, 0, 0])
    e = np.zeros((2, 2, 4))
    e[0, :, 0] = 1.0  # anchor 0's candidates point at the prompt
    e[1, :, 1] = 1.0
    t = PairTable(terms=T.terms, embeds={False: e, True: e}, source_embed=np.array([0, 0, 1.0, 0]), text_embed=text,
                  localised=T.localised, success=T.success)
    cfg = EditConfig(anchors=2, rank_top_t2i=1)
    assert replay(t, (1, 0, 0), "rank", False, 2, cfg) == (True, True)  # anchor 0 at its best-L size 1


def test_study_ranks_policies_by_edits_that_land():
    rows = study([T], CFG)
    assert rows[0]["both"] == 1.0 and rows[-1]["both"] == 0.0
    assert {r["final"] for r in rows} == {"rank", "objective"} and {r["anchors"] for r in rows} == {2}
    assert len(rows) == (4 ** 3 - 1) * 2 * 2  # weights (not all zero) x final pick x paste-back
