"""The numpy RGN (forward, backward), its policy gradients and Adam against torch autograd +
torch.optim.Adam; learn_sizes; safetensors checkpoints written and read without torch."""

import numpy as np
import pytest
import torch

from lredit import safetensors_io
from lredit.engine.ops import rgn_numpy
from lredit.engine.ops.rgn_learning import (
    Adam,
    GradientMode,
    expected_loss_grad,
    learn_sizes,
    reinforce_grad,
)
from lredit.errors import InputError, ModelSourceError, OutputError
from lredit.export.rgn import RegionNetwork, load_rgn_checkpoint, rgn_params
from lredit.rgn_checkpoint import HEAD_KEYS, check_writable, load_rgn, save_rgn

K, M, C, L, D = 5, 6, 12, 8, 32
STEP_ATOL = 1e-6  # numpy Adam step vs torch autograd + torch.optim.Adam, parameters after the step


@pytest.fixture()
def net():
    return RegionNetwork(D, C, M, L, seed=3).double()


def _pooled(seed=0):
    return np.random.default_rng(seed).normal(size=(K, M * C, L, L))


def _head(net):
    return {k: v.detach().numpy().copy() for k, v in net.head.state_dict().items()}


def test_forward_matches_torch(net):
    pooled = _pooled()
    got = rgn_numpy.log_probs(_head(net), pooled)
    with torch.no_grad():
        ref = net(torch.from_numpy(pooled)).numpy()
    assert np.abs(got - ref).max() <= 1e-10


def _torch_step(net, pooled, surrogate, steps=1):
    opt = torch.optim.Adam(net.head.parameters(), lr=5e-3)
    for _ in range(steps):
        opt.zero_grad()
        surrogate(net(torch.from_numpy(pooled))).backward()
        opt.step()
    return _head(net)


@pytest.mark.parametrize("steps", [1, 3])
def test_adam_on_exact_expected_loss_matches_torch(net, steps):
    pooled = _pooled(1)
    losses = np.random.default_rng(2).uniform(0.5, 1.5, size=(K, M))
    head, adam = _head(net), Adam(lr=5e-3)
    for _ in range(steps):
        fwd = rgn_numpy.forward(head, pooled)
        head = adam.step(head, rgn_numpy.backward(head, fwd, expected_loss_grad(fwd.log_probs, losses)))
    table = torch.from_numpy(losses)
    ref = _torch_step(net, pooled, lambda lp: (lp.exp() * table).sum(dim=1).mean(), steps)
    for name in HEAD_KEYS:
        assert np.abs(head[name] - ref[name]).max() <= STEP_ATOL, name
    assert any(np.abs(head[n] - _head(RegionNetwork(D, C, M, L, seed=3).double())[n]).max() > 1e-4 for n in head)


def test_adam_on_reinforce_surrogate_matches_torch(net):
    pooled = _pooled(3)
    rng = np.random.default_rng(4)
    sizes = rng.integers(0, M, size=(K, 2))
    losses = rng.uniform(0.5, 1.5, size=(K, 2))
    baseline = rng.uniform(0.5, 1.5, size=K)
    head = _head(net)
    fwd = rgn_numpy.forward(head, pooled)
    head = Adam(lr=5e-3).step(head, rgn_numpy.backward(head, fwd, reinforce_grad(fwd.log_probs, sizes, losses, baseline)))
    idx = torch.from_numpy(sizes)
    adv = torch.from_numpy(losses - baseline[:, None])
    ref = _torch_step(net, pooled, lambda lp: (adv * lp.gather(1, idx)).mean())
    for name in HEAD_KEYS:
        assert np.abs(head[name] - ref[name]).max() <= STEP_ATOL, name


def test_reinforce_is_the_exact_gradient_in_expectation():
    """Summing the score-function gradient over every size, weighted by its probability, gives
    the exact expected-loss gradient (w.r.t. the logits; any per-anchor baseline)."""
    rng = np.random.default_rng(12)
    log_probs = rgn_numpy.log_softmax(rng.normal(size=(K, M)))
    probs, losses, baseline = np.exp(log_probs), rng.uniform(0, 1, size=(K, M)), rng.uniform(0, 1, size=K)

    def logits_grad(g):
        return g - probs * g.sum(axis=1, keepdims=True)

    expectation = np.zeros((K, M))
    for m in range(M):
        sizes = np.full((K, 1), m)
        g = reinforce_grad(log_probs, sizes, losses[:, m : m + 1], baseline)
        expectation += probs[:, m : m + 1] * logits_grad(g)
    np.testing.assert_allclose(expectation, logits_grad(expected_loss_grad(log_probs, losses)), atol=1e-12)


def _params(seed=3):
    return rgn_params(RegionNetwork(D, C, M, L, seed=seed))


@pytest.mark.parametrize("mode", [GradientMode.EXACT, GradientMode.SAMPLED])
def test_learn_moves_probability_mass_to_the_best_size(mode):
    params = _params()
    pooled = _pooled(5).astype(np.float32)
    losses = np.random.default_rng(6).uniform(0.8, 1.0, size=(K, M))
    best = losses.argmin(axis=1)
    losses[np.arange(K), best] = 0.3
    before = np.exp(rgn_numpy.log_probs(params.head, pooled))
    calls = []

    def scorer(pairs):
        calls.append(len(pairs))
        return losses[pairs[:, 0], pairs[:, 1]]

    # REINFORCE is noisy: three samples per anchor and iteration, a smaller step
    lr, samples = (5e-2, 1) if mode is GradientMode.EXACT else (1e-2, 3)
    result = learn_sizes(pooled, params, scorer, iterations=60, lr=lr, mode=mode, samples=samples)
    gained = result.probabilities[np.arange(K), best] - before[np.arange(K), best]
    assert (gained > 0).all(), gained
    assert result.mean_loss[-1] < result.mean_loss[0]
    assert sum(calls) == result.pairs_scored <= K * M  # every pair inpainted at most once
    if mode is GradientMode.EXACT:
        assert calls == [K * M]
        np.testing.assert_array_equal(result.choices, best)
    assert len(result.mean_loss) == 60


def test_learn_with_the_authors_numbers_moves_mass_in_ten_iterations():
    params, pooled = _params(), _pooled(7)
    losses = np.random.default_rng(8).uniform(0.5, 1.0, size=(K, M))
    best = losses.argmin(axis=1)
    before = np.exp(rgn_numpy.log_probs(params.head, pooled))
    result = learn_sizes(pooled, params, losses)  # 10 iterations, lr 5e-3, exact
    # one network serves every anchor, so one anchor's best size may lose a little mass to another's;
    # the expected loss falls at every step, and the best sizes gain mass overall
    assert np.all(np.diff(result.mean_loss) < 0), result.mean_loss
    assert (result.probabilities * losses).sum(axis=1).mean() < (before * losses).sum(axis=1).mean()
    assert result.probabilities[np.arange(K), best].sum() > before[np.arange(K), best].sum()
    assert len(result.mean_loss) == 10 and result.pairs_scored == K * M


def test_learn_has_nothing_to_learn_with_one_size():
    params = rgn_params(RegionNetwork(D, C, 1, L))
    with pytest.raises(InputError, match="at least 2 box sizes.*M=1"):
        learn_sizes(np.zeros((1, C, L, L)), params, np.zeros((1, 1)))


def test_learn_rejects_bad_loss_tables():
    with pytest.raises(InputError, match=r"losses have shape \(2, 6\)"):
        learn_sizes(_pooled(), _params(), np.zeros((2, M)))
    bad = np.zeros((K, M))
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        learn_sizes(_pooled(), _params(), bad)


def test_safetensors_format_is_read_by_the_reference_library_and_back(tmp_path):
    from safetensors.numpy import load_file, save_file

    tensors = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([1, -2], dtype=np.int64),
               "c": np.ones((0, 4), dtype=np.float16)}
    ours = tmp_path / "ours.safetensors"
    safetensors_io.save_file(ours, tensors, {"epoch": "3"})
    theirs = load_file(str(ours))
    for name, value in tensors.items():
        np.testing.assert_array_equal(theirs[name], value)
        assert theirs[name].dtype == value.dtype
    ref = tmp_path / "ref.safetensors"
    save_file(tensors, str(ref), metadata={"x": "y"})
    back, meta = safetensors_io.load_file(ref)
    assert meta == {"x": "y"} and set(back) == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(back[name], value)
    data = ours.read_bytes()
    with pytest.raises(InputError, match="trailing bytes"):
        safetensors_io.decode(data + b"\0" * 8)
    with pytest.raises(InputError, match="not a safetensors file"):
        safetensors_io.decode(b"\xff" * 16)


def test_save_load_round_trip_gives_the_same_choices(tmp_path):
    params, pooled = _params(), _pooled(9)
    losses = np.random.default_rng(10).uniform(0.5, 1.0, size=(K, M))
    learned = learn_sizes(pooled, params, losses, iterations=30, lr=5e-2)
    path = tmp_path / "rgn.safetensors"
    save_rgn(path, learned.params)
    tensors, _ = safetensors_io.load_file(path)
    assert set(tensors) == {f"anchor_net.{k}" for k in HEAD_KEYS} | {"conv.weight", "conv.bias"}
    assert tensors["conv.weight"].shape == (C, D, 1, 1) and tensors["anchor_net.0.weight"].shape == (8, M * C, 1, 1)
    loaded = load_rgn(path, (np.zeros((C, D), np.float32), np.zeros(C, np.float32)), sizes=M, channels=C, roi_size=L)
    assert loaded.has_projection and loaded.warnings == ()
    np.testing.assert_array_equal(loaded.params.projection_weight, params.projection_weight)
    choices = np.argmax(rgn_numpy.log_probs(loaded.params.head, pooled), axis=1)
    np.testing.assert_array_equal(choices, learned.choices)
    # the torch reference loads the same file (head and projection) and makes the same choices
    net = RegionNetwork(D, C, M, L, seed=0)
    load_rgn_checkpoint(net, path)
    with torch.no_grad():
        torch_choices = net(torch.from_numpy(pooled.astype(np.float32))).argmax(dim=1).numpy()
    np.testing.assert_array_equal(torch_choices, learned.choices)
    np.testing.assert_array_equal(net.projection_arrays()[0], params.projection_weight)


def test_head_only_safetensors_keeps_the_seeded_projection(tmp_path):
    params = _params()
    path = tmp_path / "head.safetensors"
    safetensors_io.save_file(path, {k: v for k, v in params.state_dict().items() if k.startswith("anchor_net.")})
    seeded = (np.full((C, D), 0.5, np.float32), np.zeros(C, np.float32))
    loaded = load_rgn(path, seeded)
    assert not loaded.has_projection and "seeded projection" in loaded.warnings[0]
    np.testing.assert_array_equal(loaded.params.projection_weight, seeded[0])
    with pytest.raises(ModelSourceError, match=r"does not fit this pipeline: M=6 \(expected 4\)"):
        load_rgn(path, seeded, sizes=4)


def test_save_rgn_target_is_checked_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write into"):
        check_writable(blocker / "sub" / "rgn.safetensors")
    with pytest.raises(OutputError, match="is a folder"):
        check_writable(tmp_path)
    with pytest.raises(OutputError, match="name the file"):
        check_writable(tmp_path / "rgn.pt")
    check_writable(tmp_path / "new" / "rgn.safetensors")
    assert not list((tmp_path / "new").iterdir())  # the probe file is gone


def test_numpy_session_matches_the_exported_rgn_graph(tiny_bundle):
    from lredit.engine.runtimes.ort_runtime import OrtSession

    loaded = load_rgn(tiny_bundle / "rgn.safetensors", (np.zeros((C, D), np.float32), np.zeros(C, np.float32)))
    assert loaded.has_projection
    with np.load(tiny_bundle / "rgn_projection.npz") as proj:
        np.testing.assert_array_equal(proj["weight"], loaded.params.projection_weight)
    pooled = _pooled(11).astype(np.float32)
    ref = OrtSession(tiny_bundle / "onnx" / "rgn.onnx").run({"pooled": pooled})["log_probs"]
    got = rgn_numpy.NumpyRgnSession(loaded.params).run({"pooled": pooled})["log_probs"]
    assert np.abs(got - ref).max() <= 1e-5
