"""numpy schedulers vs diffusers' step on random inputs over full schedules (fp32, 1e-5)."""

import numpy as np
import pytest
import torch

from lredit.engine.ops.schedulers import make_scheduler
from lredit.errors import BundleError, InputError
from lredit.export.diffusers_schedulers import diffusers_scheduler
from lredit.export.models import SD15_SCHEDULER
from lredit.export.scheduler_tables import scheduler_tables

TOL = 1e-5  # max abs error, relative to the sample's scale (>= 1)
NAMES = ["model", "pndm", "ddim", "euler", "dpmpp_2m"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [10, 25, 50])
def test_schedule_matches_diffusers(name, steps):
    ref = diffusers_scheduler(SD15_SCHEDULER, name)
    ours = make_scheduler(name, SD15_SCHEDULER, ref.alphas_cumprod.numpy())
    ref.set_timesteps(steps)
    ts = ours.set_timesteps(steps)
    assert ts.tolist() == ref.timesteps.tolist()
    assert ours.init_noise_sigma == pytest.approx(float(ref.init_noise_sigma), rel=1e-6)
    rng = np.random.default_rng(steps)
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32) * np.float32(ours.init_noise_sigma)
    x_ref = torch.from_numpy(x.copy())
    for t, t_ref in zip(ts, ref.timesteps):
        scaled, scaled_ref = ours.scale_model_input(x, t), ref.scale_model_input(x_ref, t_ref)
        scale = max(1.0, float(np.abs(x).max()))
        assert np.abs(scaled - scaled_ref.numpy()).max() <= TOL * scale, f"scale_model_input t={t}"
        eps = rng.standard_normal(x.shape).astype(np.float32)
        x = ours.step(eps, t, x)
        x_ref = ref.step(torch.from_numpy(eps), t_ref, x_ref).prev_sample
        assert np.abs(x - x_ref.numpy()).max() <= TOL * max(1.0, float(np.abs(x).max())), f"step t={t}"
    assert np.isfinite(x).all()


@pytest.mark.parametrize("name", NAMES)
def test_runtime_timesteps_match_the_manifest_tables(name):
    """The tables export writes (from diffusers) and the runtime's own schedule agree."""
    tables = scheduler_tables(SD15_SCHEDULER)
    ours = make_scheduler(name, tables["config"], tables["alphas_cumprod"])
    for steps, row in tables["tables"][name]["steps"].items():
        assert ours.set_timesteps(int(steps)).astype(np.float64).tolist() == row["timesteps"]
        if "sigmas" in row:
            np.testing.assert_allclose(ours.sigmas, row["sigmas"], rtol=1e-6)


def test_unsupported_scheduler_is_a_clear_error():
    with pytest.raises(InputError, match="'unipc'.*not available in the runtime"):
        make_scheduler("unipc", SD15_SCHEDULER, np.ones(1000))


def test_unsupported_variant_is_a_clear_error():
    with pytest.raises(BundleError, match="use_karras_sigmas"):
        make_scheduler("euler", {**SD15_SCHEDULER, "use_karras_sigmas": True}, np.ones(1000))
    with pytest.raises(BundleError, match="v_prediction"):
        make_scheduler("ddim", {**SD15_SCHEDULER, "prediction_type": "v_prediction"}, np.ones(1000))


def test_steps_out_of_range_is_a_clear_error():
    with pytest.raises(InputError, match="steps=0"):
        make_scheduler("euler", SD15_SCHEDULER, np.linspace(0.99, 0.01, 1000)).set_timesteps(0)


def _both(name):
    """(numpy scheduler, torch reference's wrapped diffusers scheduler) for `name`."""
    from lredit.engine.runtimes.reference.torch_backend import DiffusersScheduler

    ref = diffusers_scheduler(SD15_SCHEDULER, name)
    return make_scheduler(name, SD15_SCHEDULER, ref.alphas_cumprod.numpy()), DiffusersScheduler(ref)


def _run_rows(sched, rows, steps, select_at=None, keep=None):
    """Run `rows` of a fixed per-row sequence of eps through the schedule; optionally slice the
    batch to `keep` after step `select_at`. Each row's eps depends on (row, step) only."""
    ts = sched.set_timesteps(steps)
    x = np.stack([np.random.default_rng([r, 99]).standard_normal((4, 4, 4), dtype=np.float32) for r in rows])
    x = x * np.float32(sched.init_noise_sigma)
    rows = list(rows)
    for i, t in enumerate(ts):
        eps = np.stack([np.random.default_rng([r, i]).standard_normal((4, 4, 4), dtype=np.float32) for r in rows])
        x = np.asarray(sched.step(eps, t, x), dtype=np.float32)
        if select_at == i:
            sched.select(keep)
            x, rows = x[keep], [rows[j] for j in keep]
    return x


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("select_at", [0, 1, 4])
def test_select_rows_equals_running_the_sub_batch_alone(name, select_at):
    # select_at 0/1 cut inside PNDM's warm-up (cur_sample held) and DPM's first-order start.
    for sched in _both(name):  # the numpy runtime's and the torch reference's
        full = _run_rows(sched, range(5), 8, select_at=select_at, keep=[0, 2, 4])
        alone = _run_rows(sched, [0, 2, 4], 8)
        assert np.abs(full - alone).max() <= 1e-6, f"{type(sched).__name__} select at step {select_at}"


@pytest.mark.parametrize("name", NAMES)
def test_predict_x0_matches_the_reference(name):
    ours, ref = _both(name)
    ts = ours.set_timesteps(10)
    ref.set_timesteps(10)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 4, 4)).astype(np.float32) * np.float32(ours.init_noise_sigma)
    for t in ts[:4]:
        eps = rng.standard_normal(x.shape).astype(np.float32)
        mine, theirs = ours.predict_x0(eps, t, x), ref.predict_x0(eps, t, x)
        assert np.abs(mine - theirs).max() <= TOL * max(1.0, float(np.abs(theirs).max())), f"t={t}"
        x = ours.step(eps, t, x)
        ref.step(eps, t, x.copy())


@pytest.mark.parametrize("name", ["ddim", "euler"])
def test_predict_x0_is_diffusers_pred_original_sample(name):
    ref = diffusers_scheduler(SD15_SCHEDULER, name)
    ours = make_scheduler(name, SD15_SCHEDULER, ref.alphas_cumprod.numpy())
    ts = ours.set_timesteps(10)
    ref.set_timesteps(10)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 4, 4, 4)).astype(np.float32) * np.float32(ours.init_noise_sigma)
    for t, t_ref in zip(ts[:3], ref.timesteps[:3]):
        eps = rng.standard_normal(x.shape).astype(np.float32)
        x0 = ref.step(torch.from_numpy(eps), t_ref, torch.from_numpy(x)).pred_original_sample.numpy()
        assert np.abs(ours.predict_x0(eps, t, x) - x0).max() <= TOL * max(1.0, float(np.abs(x0).max()))
        x = ours.step(eps, t, x)
