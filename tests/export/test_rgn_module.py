import numpy as np
import pytest
import torch

from lredit.errors import ModelSourceError
from lredit.export.rgn import RegionNetwork, load_rgn_checkpoint


def _authors_state(net, prefix):
    torch.manual_seed(123)
    return {f"{prefix}anchor_net.{k}": torch.randn_like(v) for k, v in net.head.state_dict().items()}


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("wrapped", [False, True])
def test_checkpoint_in_authors_format_loads(tmp_path, prefix, wrapped):
    net = RegionNetwork(32, 12, 6, 8, seed=0)
    state = _authors_state(net, prefix)
    state[f"{prefix}dino.cls_token"] = torch.zeros(1)  # other keys of the checkpoint are ignored
    path = tmp_path / "rgn.pt"
    torch.save({"state_dict": state} if wrapped else state, path)
    seeded = net.projection_arrays()
    loaded = load_rgn_checkpoint(net, path)
    # head only (the authors' loader reads only anchor_net.*): the seeded projection stays, and it says so
    assert not loaded.has_projection and "seeded projection" in loaded.warnings[0]
    np.testing.assert_array_equal(net.projection_arrays()[0], seeded[0])
    pooled = torch.randn(4, 72, 8, 8)
    # the loaded head computes with the checkpoint's weights: compare against a manual forward
    w = {k.split("anchor_net.")[1]: v for k, v in state.items() if "anchor_net." in k}
    x = torch.relu(torch.nn.functional.conv2d(pooled, w["0.weight"], w["0.bias"]))
    x = torch.relu(torch.nn.functional.conv2d(x, w["2.weight"], w["2.bias"])).flatten(1)
    x = torch.relu(x @ w["5.weight"].T + w["5.bias"]) @ w["7.weight"].T + w["7.bias"]
    torch.testing.assert_close(net(pooled), torch.log_softmax(x, -1), atol=1e-5, rtol=1e-5)


def test_checkpoint_with_wrong_sizes_names_the_mismatch(tmp_path):
    small = RegionNetwork(32, 12, 4, 8)
    path = tmp_path / "rgn.pt"
    torch.save(_authors_state(small, "module."), path)
    with pytest.raises(ModelSourceError, match=r"does not fit this pipeline: M=4 \(expected 6\)"):
        load_rgn_checkpoint(RegionNetwork(32, 12, 6, 8), path)


def test_checkpoint_errors(tmp_path):
    net = RegionNetwork(32, 12, 6, 8)
    with pytest.raises(ModelSourceError, match="not found"):
        load_rgn_checkpoint(net, tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelSourceError, match="cannot read RGN checkpoint"):
        load_rgn_checkpoint(net, bad)
    other = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(1)}, other)
    with pytest.raises(ModelSourceError, match="no 'anchor_net"):
        load_rgn_checkpoint(net, other)


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = RegionNetwork(32, 12, 6, 8, seed=1)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = RegionNetwork(32, 12, 6, 8, seed=1)
    c = RegionNetwork(32, 12, 6, 8, seed=2)
    for (ka, va), (_, vb), (_, vc) in zip(a.state_dict().items(), b.state_dict().items(), c.state_dict().items()):
        assert torch.equal(va, vb), ka
        assert not torch.equal(va, vc), ka
    w, bias = a.projection_arrays()
    assert w.shape == (12, 32) and bias.shape == (12,) and np.abs(w).max() <= 1 / np.sqrt(32)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_authors_checkpoint_loads_its_conv_projection(tmp_path, prefix):
    """The fixed loader: conv.* (the authors' 1x1 projection) is loaded with the head, so a
    loaded head is never paired with another projection."""
    net = RegionNetwork(32, 12, 6, 8, seed=0)
    state = _authors_state(net, prefix)
    conv_w, conv_b = torch.randn(12, 32, 1, 1), torch.randn(12)
    state[f"{prefix}conv.weight"], state[f"{prefix}conv.bias"] = conv_w, conv_b
    path = tmp_path / "rgn.pt"
    torch.save(state, path)
    loaded = load_rgn_checkpoint(net, path)
    assert loaded.has_projection and loaded.warnings == ()
    weight, bias = net.projection_arrays()
    np.testing.assert_array_equal(weight, conv_w.numpy().reshape(12, 32))
    np.testing.assert_array_equal(bias, conv_b.numpy())


def test_models_record_a_head_only_checkpoint_in_sources_and_warnings(tmp_path):
    from lredit.export.models import ModelSources, load_models

    net = RegionNetwork(32, 12, 6, 8)
    path = tmp_path / "rgn.pt"
    torch.save(_authors_state(net, "module."), path)
    models = load_models(ModelSources(preset="tiny", rgn=path), sizes=6, channels=12, roi_size=8)
    assert models.sources["rgn"] == str(path)
    assert any("holds only the head" in w for w in models.warnings)
