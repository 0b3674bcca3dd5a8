"""Region mode `learn` wired to the RGN learning core (engine.rgn_learning, from branch
regions-obj): every pair scored once by an unpruned search (stub scorer of set losses), the RGN
trained on those losses, its choice picks the already inpainted images."""

import numpy as np
import pytest

from lredit.config import RegionMode
from lredit.engine.core.pipeline import EditPipeline

rgn_learning = pytest.importorskip("lredit.engine.ops.rgn_learning", reason="the learn core (branch regions-obj) is not merged")

from test_region_search import MAX_LEVELS, TABLE, K, M, SetLosses, _inpaint, _levels  # noqa: E402


def test_learn_trains_on_the_pair_losses_and_uses_the_learned_choice(reference, photo):
    cfg = reference.config.replace(anchors=K, steps=3, regions=RegionMode.LEARN, learn_iterations=10)
    pipe = EditPipeline(reference.sessions, reference.assets, cfg, scorer_factory=lambda job: SetLosses(TABLE))
    result = pipe.edit(photo, "a red car")
    out = result.regions
    assert out.mode is RegionMode.LEARN and out.unet_rows == 2 * K * M * 4  # every pair, once, unpruned
    assert len(out.learn) == 10 and out.learn[-1] < out.learn[0]  # the expected loss goes down
    # The same choice as the learn core run directly on the same pooled features and losses.
    pooled = pipe.prepare(photo, "a red car", None, cfg).pooled
    direct = rgn_learning.learn_sizes(pooled, pipe.assets.rgn, TABLE, iterations=10, lr=cfg.learn_lr)
    assert result.size_index.tolist() == direct.choices.tolist()
    assert out.learned_rgn is not None
    alone = _inpaint(pipe, photo, np.stack([np.arange(K), result.size_index], 1), prompt="a red car")
    for k in range(K):
        assert _levels(result.candidates[k], alone.images[k]) <= MAX_LEVELS

