"""openvino_graphs (the OpenVINO peer on a bundle's graphs): its inputs and its errors; the
comparison itself needs openvino, which only its own venv has (bench/peer_openvino.sh)."""

import numpy as np
import pytest

from lredit.bench.openvino_graphs import compare, feeds_for, main
from lredit.manifest import read_manifest


def test_inputs_follow_the_profiles_opt_shapes(tiny_bundle):
    graphs = read_manifest(tiny_bundle).graphs
    feeds = feeds_for(graphs["unet"], np.random.default_rng(0))
    assert {k: list(v.shape) for k, v in feeds.items()} == {k: list(graphs["unet"].profile[k]["opt"]) for k in feeds}
    assert feeds_for(graphs["unet"], np.random.default_rng(0), batch=2)["sample"].shape[0] == 2
    ids = feeds_for(graphs["clip_text"], np.random.default_rng(0))["input_ids"]
    assert ids.dtype == np.int64


def test_a_folder_without_a_manifest_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "has no manifest.json; export one with lr-export" in capsys.readouterr().err


def test_openvino_matches_onnx_runtime_on_the_tiny_unet(tiny_bundle):
    pytest.importorskip("openvino", reason="openvino is installed only in the peer's venv (bench/peer_openvino.sh)")
    record = compare(tiny_bundle, ["unet"], runs=1, threads=1)
    assert record["graphs"]["unet"]["max_abs_diff"] < 1e-3  # fp32 both
