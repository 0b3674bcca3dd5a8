"""numpy schedulers vs diffusers' step on random inputs over full schedules (fp32, 1e-5)."""

import numpy as np
import pytest
import torch

from lredit.engine.reference.models import SD15_SCHEDULER
from lredit.engine.reference.torch_backend import diffusers_scheduler
from lredit.engine.schedulers import make_scheduler

TOL = 1e-5


@pytest.mark.parametrize("name", ["model", "pndm", "ddim"])
@pytest.mark.parametrize("steps", [10, 25, 50])
def test_schedule_matches_diffusers(name, steps):
    ref = diffusers_scheduler(SD15_SCHEDULER, name)
    ours = make_scheduler(name, SD15_SCHEDULER, ref.alphas_cumprod.numpy())
    ref.set_timesteps(steps)
    ts = ours.set_timesteps(steps)
    assert ts.tolist() == ref.timesteps.tolist()
    rng = np.random.default_rng(steps)
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    x_ref = torch.from_numpy(x.copy())
    for t in ts:
        eps = rng.standard_normal(x.shape).astype(np.float32)
        x = ours.step(eps, t, x)
        x_ref = ref.step(torch.from_numpy(eps), torch.tensor(t), x_ref).prev_sample
        assert np.abs(x - x_ref.numpy()).max() <= TOL * max(1.0, np.abs(x).max()), f"t={t}"


def test_unsupported_scheduler_is_a_clear_error():
    from lredit.engine.errors import InputError

    with pytest.raises(InputError, match="'euler'.*not available in the runtime"):
        make_scheduler("euler", SD15_SCHEDULER, np.ones(1000))
