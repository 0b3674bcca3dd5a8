"""The ONNX Runtime attention-fused variants: what is fused, what is left, parity."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lredit.export.ort_fusion import fuse_attention, write_ort_variant

FUSED_VS_STANDARD = 1e-5  # fp32, unit-scale random inputs: the same math in another order


def _ops(path):
    return [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]


@pytest.mark.parametrize("graph", ["unet", "vae_decoder", "vae_encoder"])
def test_every_attention_is_fused_and_parity_recorded(tiny_bundle, graph):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    entry = manifest["graphs"][graph]
    assert entry["ort_file"] == f"onnx/{graph}.ort.onnx" and entry["ort_file"] in entry["files"]
    standard, fused = _ops(tiny_bundle / entry["file"]), _ops(tiny_bundle / entry["ort_file"])
    assert standard.count("Softmax") >= 1
    assert fused.count("MultiHeadAttention") == standard.count("Softmax") and "Softmax" not in fused
    parity = json.loads((tiny_bundle / "parity.json").read_text())[graph]
    rows = {k: v for k, v in parity.items() if k.endswith("[ort attention]")}
    assert rows and all(r["ok"] for r in rows.values())


def test_fused_unet_matches_standard_on_fresh_inputs(tiny_bundle):
    rng = np.random.default_rng(2024)
    feeds = {"sample": rng.standard_normal((4, 9, 8, 8)).astype(np.float32),
             "timestep": rng.uniform(0, 999, 4).astype(np.float32),
             "encoder_hidden_states": rng.standard_normal((4, 77, 32)).astype(np.float32)}
    outs = [ort.InferenceSession(str(tiny_bundle / "onnx" / name), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
            for name in ("unet.onnx", "unet.ort.onnx")]
    assert np.abs(outs[0] - outs[1]).max() <= FUSED_VS_STANDARD


def test_masked_attention_is_left_alone(tiny_bundle, tmp_path):
    """CLIP's text encoder adds a causal mask before Softmax: not the fused pattern."""
    model = onnx.load(str(tiny_bundle / "onnx" / "sd_text.onnx"))
    softmax = sum(n.op_type == "Softmax" for n in model.graph.node)
    assert softmax > 0 and fuse_attention(model) == 0
    assert sum(n.op_type == "Softmax" for n in model.graph.node) == softmax
    copy = tmp_path / "sd_text.onnx"
    onnx.save(model, str(copy))
    assert write_ort_variant(copy, tmp_path / "sd_text.ort.onnx") == 0
    assert not (tmp_path / "sd_text.ort.onnx").exists()


def test_variant_must_sit_beside_its_weights(tmp_path):
    with pytest.raises(ValueError, match="beside its graph"):
        write_ort_variant(tmp_path / "a" / "unet.onnx", tmp_path / "b" / "unet.ort.onnx")


@pytest.mark.parametrize("graph", ["unet", "vae_decoder", "vae_encoder"])
def test_variant_references_the_shared_weights_file(tiny_bundle, graph):
    entry = json.loads((tiny_bundle / "manifest.json").read_text())["graphs"][graph]
    data = f"onnx/{graph}.onnx.data"
    assert data in entry["files"]
    for rel in (entry["file"], entry["ort_file"]):
        model = onnx.load(str(tiny_bundle / rel), load_external_data=False)
        places = {(t.data_location, {e.key: e.value for e in t.external_data}.get("location")) for t in model.graph.initializer}
        assert places == {(onnx.TensorProto.EXTERNAL, f"{graph}.onnx.data")}, rel


def test_variant_of_a_graph_with_embedded_weights_is_refused(tiny_bundle, tmp_path):
    copy = tmp_path / "unet.onnx"
    onnx.save(onnx.load(str(tiny_bundle / "onnx" / "unet.onnx")), str(copy))  # weights now embedded
    with pytest.raises(ValueError, match="embeds .* initializers"):
        write_ort_variant(copy, tmp_path / "unet.ort.onnx")
    assert not (tmp_path / "unet.ort.onnx").exists()
