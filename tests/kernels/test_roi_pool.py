"""The numpy ROI pool against independent ROI-align implementations: ONNX Runtime's RoiAlign
operator, torchvision.ops.roi_align's recorded outputs (always), and torchvision live where it
imports. Tolerance 1e-5."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from lredit.kernels import roi_pool_ref as R

TOL = 1e-5
# ONNX Runtime computes sample positions in float32; with boxes given in pixel units (scale 1/8)
# that alone moves samples by ~1e-5 cells, so that comparison allows a little more.
ORT_TOL = 3e-5


def _ort_roi_align(features, boxes, out, scale, ratio, aligned):
    node = helper.make_node(
        "RoiAlign", ["X", "rois", "idx"], ["Y"], mode="avg", output_height=out, output_width=out,
        sampling_ratio=max(ratio, 0), spatial_scale=scale,
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
    )
    graph = helper.make_graph(
        [node], "roi",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("rois", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("idx", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": features[None].astype(np.float32), "rois": boxes.astype(np.float32),
                           "idx": np.zeros(len(boxes), dtype=np.int64)})[0]


def _boxes(rng, n, size):
    # inside, touching the border, crossing it, 1-cell and degenerate boxes
    fixed = np.array([[0, 0, size - 1, size - 1], [-3, -2, 4, 5], [size - 3, size - 4, size + 2, size + 3],
                      [5, 5, 6, 6], [7, 7, 7, 7], [2.5, 1.25, 9.75, 3.5]], dtype=np.float64)
    a = rng.uniform(-2, size + 1, size=(n, 2))
    wh = rng.uniform(0, size / 2, size=(n, 2))
    return np.concatenate([fixed, np.concatenate([a, a + wh], axis=1)])


@pytest.mark.parametrize("shape", [(3, 8, 8), (12, 32, 32), (5, 13, 21)])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [-1, 1, 2])
@pytest.mark.parametrize("out,scale", [(8, 1.0), (7, 0.125), (3, 0.5)])
def test_roi_align_matches_onnxruntime(shape, aligned, ratio, out, scale):
    rng = np.random.default_rng(hash((shape, aligned, ratio, out)) % 2**32)
    feats = rng.standard_normal(shape).astype(np.float32)
    boxes = _boxes(rng, 10, max(shape[1:])) / scale
    ours = R.roi_align(feats, boxes, out, spatial_scale=scale, sampling_ratio=ratio, aligned=aligned)
    theirs = _ort_roi_align(feats, boxes, out, scale, ratio, aligned)
    np.testing.assert_allclose(ours, theirs, atol=TOL if scale == 1.0 else ORT_TOL, rtol=0)


def test_roi_align_matches_torchvision():
    tv = pytest.importorskip("torchvision.ops", reason="torchvision does not import beside torch 2.13 CPU here")
    import torch

    rng = np.random.default_rng(3)
    feats = rng.standard_normal((4, 16, 16)).astype(np.float32)
    boxes = _boxes(rng, 12, 16)
    for aligned in (False, True):
        for ratio in (-1, 2):
            ours = R.roi_align(feats, boxes, 8, spatial_scale=1.0, sampling_ratio=ratio, aligned=aligned)
            ref = tv.roi_align(torch.from_numpy(feats)[None], [torch.from_numpy(boxes).float()], 8, 1.0, ratio, aligned)
            np.testing.assert_allclose(ours, ref.numpy(), atol=TOL)


def test_roi_align_matches_recorded_torchvision_cases():
    """torchvision's outputs on 192 cases (aligned False/True, sampling ratios adaptive/1/2/4,
    scales 1 and 1/8, boxes inside, touching and crossing the border, 1-cell and zero-size),
    recorded by kernels/record_torchvision_cases.py in a venv with torchvision."""
    from pathlib import Path

    data = np.load(Path(__file__).resolve().parents[1] / "data" / "roi_align_torchvision.npz")
    cases = sorted({int(k.split("/")[0]) for k in data.files if "/" in k})
    assert len(cases) == 192
    for i in cases:
        size, aligned, ratio, scale = data[f"{i}/params"]
        ours = R.roi_align(data[f"{i}/features"], data[f"{i}/boxes"], int(size), spatial_scale=float(scale),
                           sampling_ratio=int(ratio), aligned=bool(aligned))
        worst = np.abs(ours - data[f"{i}/pooled"]).max()
        assert worst <= TOL, f"case {i}: size {size}, aligned {aligned}, ratio {ratio}, scale {scale}: {worst:.3g}"


def test_roi_align_hand_computed():
    feats = np.arange(16, dtype=np.float32).reshape(1, 4, 4)  # value = 4*y + x
    # A 1x1 output over box (0,0)-(2,2) with one sample: the centre (1,1) -> 5.
    got = R.roi_align(feats, np.array([[0, 0, 2, 2]]), 1, sampling_ratio=1)
    assert got.item() == pytest.approx(5.0)
    # Bilinear: the map is linear, so the bin mean is the value at the bin centre.
    got = R.roi_align(feats, np.array([[0.5, 1.0, 2.5, 3.0]]), 2, sampling_ratio=2)
    centres_x, centres_y = [1.0, 2.0], [1.5, 2.5]
    np.testing.assert_allclose(got[0, 0], [[4 * y + x for x in centres_x] for y in centres_y], atol=1e-6)


def test_fused_projection_equals_project_then_pool():
    rng = np.random.default_rng(0)
    h = w = 12
    tokens = rng.standard_normal((h * w, 40)).astype(np.float32)
    weight = rng.standard_normal((6, 40)).astype(np.float32) * 0.1
    bias = rng.standard_normal(6).astype(np.float32)
    anchors = np.array([[0, 0], [5, 7], [11, 3]])
    from lredit.kernels.geometry import proposal_boxes

    boxes = proposal_boxes(anchors, (2, 4, 7), (h, w), fix_axes=True)
    boxes[2, 2] += [-3.0, -2.0, 3.0, 2.0]  # crosses the border: samples off the map drop the bias
    for kw in (dict(), dict(aligned=True), dict(spatial_scale=0.5, sampling_ratio=2)):
        slow = R.pool_proposals(R.project_tokens(tokens, (h, w), weight, bias), boxes, 8, **kw)
        fast = R.pool_proposals_fused(tokens, (h, w), weight, bias, boxes, 8, **kw)
        np.testing.assert_allclose(fast, slow, atol=TOL)


def test_layouts():
    pooled = np.arange(2 * 3 * 1 * 1 * 1, dtype=np.float32).reshape(6, 1, 1, 1)  # (anchor, size) order
    anchor = R.arrange(pooled, 2, 3, "anchor")
    assert anchor[:, :, 0, 0].tolist() == [[0, 1, 2], [3, 4, 5]]  # anchor k: its own 3 sizes
    authors = R.arrange(pooled, 2, 3, "authors")
    # the code stacks [M, K] = [[a0s0, a1s0], [a0s1, a1s1], [a0s2, a1s2]] and reshapes to [K, M]
    assert authors[:, :, 0, 0].tolist() == [[0, 3, 1], [4, 2, 5]]
