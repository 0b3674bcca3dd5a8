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
    load_rgn_checkpoint(net, path)
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
    with pytest.raises(ModelSourceError, match=r"does not fit M=6.*wrong shape \['0.weight'"):
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
