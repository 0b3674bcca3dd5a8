"""The TensorRT backend: engine refusal on CPU; engines, IO binding and CUDA graphs on GPU."""

import numpy as np
import pytest

from lredit.engine.frontends.editor import Editor
from lredit.engine.runtimes.trt_runtime import check_engine
from lredit.errors import BundleError
from lredit.kernels.loader import cuda_device_available
from lredit.manifest import parse_manifest

GPU, GPU_REASON = cuda_device_available()
try:
    import tensorrt  # noqa: F401

    HAVE_TRT = True
except ImportError:
    HAVE_TRT = False
needs_trt_gpu = pytest.mark.skipif(not (GPU and HAVE_TRT), reason=f"needs TensorRT and a CUDA GPU ({GPU_REASON or 'no tensorrt'})")
needs_gpu = pytest.mark.skipif(not GPU, reason=f"needs a CUDA GPU: {GPU_REASON}")

PIPELINE = {"dino_size": 256, "working_size": 64, "half_sizes": [4], "roi_size": 8, "proj_channels": 12,
            "latent_channels": 4, "vae_scale_factor": 8, "clip_image_size": 224}


def _entry(tmp_path, trt="10.9.0", sm="sm90"):
    (tmp_path / "trt").mkdir(exist_ok=True)
    (tmp_path / "trt" / "unet.engine").write_bytes(b"x")
    return {"file": "onnx/unet.onnx", "files": {}, "inputs": [], "outputs": [],
            "engine": {"file": "trt/unet.engine", "sha256": "0", "tensorrt": trt, "sm": sm}}


def check_engine_of(graph, entry, trt, sm, bundle):
    """check_engine on a bundle of `tmp_path` whose manifest holds `entry` for `graph`."""
    manifest = parse_manifest({"format_version": 1, "complete": True, "precision": "fp16", "models": {"source": "tiny"},
                               "graphs": {graph: entry}, "pipeline": PIPELINE,
                               "scheduler": {"config": {}, "alphas_cumprod": []}}, bundle)
    return check_engine(manifest.graphs[graph], trt, sm, manifest)


def test_engine_for_this_trt_and_gpu_is_accepted(tmp_path):
    assert check_engine_of("unet", _entry(tmp_path), "10.9.0", "sm90", tmp_path) == tmp_path / "trt" / "unet.engine"


@pytest.mark.parametrize("trt, sm", [("10.13.0", "sm90"), ("10.9.0", "sm80")])
def test_engine_from_another_trt_or_gpu_is_refused_with_both_and_the_rebuild_command(tmp_path, trt, sm):
    with pytest.raises(BundleError) as err:
        check_engine_of("unet", _entry(tmp_path), trt, sm, tmp_path)
    msg = str(err.value)
    assert "built with TensorRT 10.9.0 for sm90" in msg and f"runs TensorRT {trt} on {sm}" in msg
    assert f"lr-export --models tiny --precision fp16 --out {tmp_path} --trt" in msg


def test_engine_built_from_an_older_graph_is_refused(tmp_path):
    entry = _entry(tmp_path)
    entry.update(file="onnx/unet.onnx", files={"onnx/unet.onnx": "new"})
    entry["engine"]["onnx_sha256"] = "old"
    with pytest.raises(BundleError, match="built from an older unet graph.*lr-export .* --trt"):
        check_engine_of("unet", entry, "10.9.0", "sm90", tmp_path)
    entry["engine"]["onnx_sha256"] = "new"
    assert check_engine_of("unet", entry, "10.9.0", "sm90", tmp_path).name == "unet.engine"


def test_bundle_without_engines_says_how_to_build_them(tmp_path):
    with pytest.raises(BundleError, match="has no TensorRT engine for unet.*--trt"):
        check_engine_of("unet", {**_entry(tmp_path), "engine": None}, "10.9.0", "sm90", tmp_path)


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here")
def test_trt_backend_without_tensorrt_is_a_clear_error(tiny_bundle):
    with pytest.raises(BundleError, match="TensorRT is not installed: pip install 'lredit\\[trt,gpu\\]'.*--backend ort"):
        Editor.from_bundle(tiny_bundle, backend="trt")


@pytest.mark.gpu
@needs_trt_gpu
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_trt_edit_matches_ort(tiny_bundle, photo, tmp_path, cuda_graph):
    """fp32 engines vs the ORT CPU run of the same bundle; CUDA graph replay on vs off."""
    import shutil

    from lredit.export.trt_build import build_engines

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    build_engines(bundle)
    got = Editor.from_bundle(bundle, backend="trt", cuda_graph=cuda_graph).edit(photo, "a cat", steps=3, anchors=3)
    ref = Editor.from_bundle(bundle, backend="ort").edit(photo, "a cat", steps=3, anchors=3)
    assert got.boxes_px.tolist() == ref.boxes_px.tolist() and got.chosen == ref.chosen
    for a, b in zip(got.candidates, ref.candidates):
        assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= 3


@pytest.mark.gpu
@needs_gpu
def test_ort_cuda_io_binding_matches_cpu(tiny_bundle, photo):
    cuda = Editor.from_bundle(tiny_bundle, backend="ort", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert cuda.pipeline.sessions["unet"].io_binding
    got = cuda.edit(photo, "a cat", steps=3, anchors=3)
    ref = Editor.from_bundle(tiny_bundle, backend="ort").edit(photo, "a cat", steps=3, anchors=3)
    assert got.chosen == ref.chosen
    for a, b in zip(got.candidates, ref.candidates):
        assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= 3
