"""regions_study's replay of pruning schedules: the rows, decodes and picks pruned search makes."""

import numpy as np

from lredit.bench.regions_study import replay, summarise


def _losses():
    # one anchor, six sizes: at mid-schedule size 4 looks best, at the end size 1 is
    final = np.array([[5.0, 1.0, 4.0, 3.0, 2.0, 6.0]])
    mids = {0.5: np.array([[5.0, 2.0, 4.0, 3.0, 1.0, 6.0]]), 0.2: np.array([[5.0, 2.0, 4.0, 3.0, 1.0, 6.0]])}
    return mids, final


def test_replay_counts_rows_and_decodes_and_keeps_what_the_schedule_keeps():
    mids, final = _losses()
    picked, rows, decoded = replay((0.5,), mids, final, total=10, keep=1 / 6)
    assert (rows, decoded) == (5 * 6 + 5 * 1, 6)
    assert picked.tolist() == [4]  # pruned to the mid-schedule best: the exhaustive size 1 is lost
    picked, rows, decoded = replay((0.5,), mids, final, total=10, keep=1 / 3)
    assert (rows, decoded) == (5 * 6 + 5 * 2, 6) and picked.tolist() == [1]  # sizes 4 and 1 survive
    picked, rows, decoded = replay((0.2, 0.5), mids, final, total=10, keep=0.5)
    assert (rows, decoded) == (2 * 6 + 3 * 3 + 5 * 2, 6 + 3) and picked.tolist() == [1]


def test_summary_sets_cost_against_exhaustive_and_one_pass():
    mids, final = _losses()
    mids = {f: mids[0.5] for f in (0.1, 0.15, 0.2, 0.3, 0.5, 0.6, 0.8)}
    summary = summarise([(mids, final, 10)], keep=0.5)
    one = summary["schedules"]["0.5 keep 0.17"]
    assert one["same_size_as_exhaustive"] == 0.0 and one["unet_rows_vs_one_pass"] == 3.5
    assert abs(one["unet_rows_vs_exhaustive"] - 35 / 60) < 1e-12
    assert summary["schedules"]["0.5"]["same_size_as_exhaustive"] == 1.0
