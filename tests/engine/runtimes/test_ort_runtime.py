"""The torch-free runtime (ONNX Runtime) against the torch reference, and bundle errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lredit.config import EditConfig
from lredit.engine.frontends.editor import Editor
from lredit.errors import BundleError, InputError

# fp32 bundle: candidate pixels within this many uint8 levels of the torch reference.
MAX_LEVELS_FP32 = 2


def test_ort_edit_matches_torch_reference(tiny_bundle, reference, photo):
    editor = Editor.from_bundle(tiny_bundle, backend="ort")
    assert editor.pipeline.config.working_size == 64
    got = editor.edit(photo, "a bowl of strawberries", steps=3, anchors=3)
    ref = reference.edit(photo, "a bowl of strawberries", steps=3, anchors=3)
    assert got.anchors.tolist() == ref.anchors.tolist()
    assert got.size_index.tolist() == ref.size_index.tolist()
    assert got.boxes_px.tolist() == ref.boxes_px.tolist()
    assert got.chosen == ref.chosen
    for a, b in zip(got.candidates, ref.candidates):
        assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= MAX_LEVELS_FP32
    np.testing.assert_allclose(got.scores.score, ref.scores.score, atol=1e-5)


def test_runtime_imports_and_edits_without_torch(tiny_bundle, tmp_path):
    from PIL import Image

    Image.new("RGB", (80, 60), (120, 30, 200)).save(tmp_path / "in.png")
    code = f"""
import sys
from lredit.engine.frontends.editor import Editor
r = Editor.from_bundle({str(tiny_bundle)!r}).edit({str(tmp_path / 'in.png')!r}, 'a cat', steps=2, anchors=2)
heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]
print('HEAVY', heavy, r.chosen)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_bundle_errors(tiny_bundle, tmp_path):
    import shutil

    with pytest.raises(BundleError, match="no manifest.json"):
        Editor.from_bundle(tmp_path)
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(BundleError, match="format version 99; this lredit reads up to 1"):
        Editor.from_bundle(copy)
    (copy / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(BundleError, match="incomplete"):
        Editor.from_bundle(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    unet = manifest["graphs"]["unet"]
    loaded = unet.get("ort_file", unet["file"])  # the file ONNX Runtime loads (attention-fused variant)
    assert loaded == "onnx/unet.ort.onnx"
    with open(copy / loaded, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    with pytest.raises(BundleError, match="corrupt \\(sha256 mismatch\\).*unet.ort.onnx"):
        Editor.from_bundle(copy)
    with pytest.raises(BundleError, match="ONNX Runtime cannot load"):
        Editor.from_bundle(copy, verify=False)
    (copy / loaded).unlink()
    with pytest.raises(BundleError, match="bundle file missing"):
        Editor.from_bundle(copy)
    # a graph with other shapes than the manifest declares
    shutil.copyfile(tiny_bundle / "onnx" / "clip_text.onnx", copy / loaded)
    with pytest.raises(BundleError, match="graph unet: inputs"):
        Editor.from_bundle(copy, verify=False)


def test_geometry_fixed_by_bundle(tiny_bundle, photo):
    editor = Editor.from_bundle(tiny_bundle)
    with pytest.raises(InputError, match="exported for working_size=64"):
        editor.edit(photo, "a cat", working_size=128)
    with pytest.raises(InputError, match="at most 16 candidates"):
        editor.edit(photo, "a cat", anchors=17)


def test_lr_edit_with_bundle(tiny_bundle, tmp_path, capsys):
    from pathlib import Path

    from lredit.engine.frontends.cli import main

    example = Path(__file__).resolve().parents[3] / "examples" / "table.png"
    code = main([str(example), "a cat", "--bundle", str(tiny_bundle), "--out", str(tmp_path / "o"), "--steps", "2",
                 "--anchors", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["backend"] == "ort" and report["config"]["working_size"] == 64 and report["config"]["steps"] == 2


def test_lr_edit_refuses_a_working_size_the_bundle_was_not_exported_for(tiny_bundle, tmp_path, capsys):
    from pathlib import Path

    from lredit.engine.frontends.cli import main

    example = Path(__file__).resolve().parents[3] / "examples" / "table.png"
    code = main([str(example), "a cat", "--bundle", str(tiny_bundle), "--out", str(tmp_path / "o"),
                 "--working-size", "128", "--no-progress"])
    assert code == 2
    assert "working_size=128: this bundle was exported for working_size=64" in capsys.readouterr().err
    assert not (tmp_path / "o" / "report.json").exists()


@pytest.mark.parametrize("scheduler", ["euler", "dpmpp_2m", "ddim"])
def test_ort_schedulers_match_torch_reference(tiny_bundle, reference, photo, scheduler):
    """The numpy update rules inside the whole edit, against diffusers' inside the reference."""
    editor = Editor.from_bundle(tiny_bundle, backend="ort")
    got = editor.edit(photo, "a red apple", steps=4, anchors=2, scheduler=scheduler)
    ref = reference.edit(photo, "a red apple", steps=4, anchors=2, scheduler=scheduler)
    assert got.boxes_px.tolist() == ref.boxes_px.tolist() and got.chosen == ref.chosen
    for a, b in zip(got.candidates, ref.candidates):
        assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= MAX_LEVELS_FP32


# fp16 bundle (fp16 inside, fp32 at the graph boundaries; DINO and RGN fp32) against the fp32
# torch reference at 256 px and 10 steps, where fp16 drift shows: with DINO in fp16 the
# candidates moved by up to 40 levels there (bench/RESULTS.md, fp16 drift). Measured with DINO
# fp32 (AMD EPYC, 2026-11-25): mean 0.060, max 1 level; the bounds leave room for other CPUs.
FP16_MEAN_LEVELS = 0.25
FP16_MAX_LEVELS = 3
FP16_GEOMETRY = dict(working_size=256, steps=10, anchors=3)


def test_fp16_bundle_edit_close_to_reference(tmp_path_factory, tiny_models, photo):
    from lredit.engine.runtimes.reference.torch_backend import reference_pipeline
    from lredit.export.exporter import ExportConfig, Precision, run_export
    from lredit.export.specs import ExportSettings
    from lredit.graphs import PIPELINE_GRAPHS

    out = tmp_path_factory.mktemp("fp16_bundle")
    run_export(ExportConfig(out=out, graphs=PIPELINE_GRAPHS, precision=Precision.FP16,
                            settings=ExportSettings(working_size=FP16_GEOMETRY["working_size"])))
    assert json.loads((out / "manifest.json").read_text())["graphs"]["dino"]["precision"] == "fp32"
    got = Editor.from_bundle(out, backend="ort").edit(photo, "a bowl of strawberries", **FP16_GEOMETRY)
    ref = reference_pipeline(tiny_models, EditConfig(**FP16_GEOMETRY)).edit(photo, "a bowl of strawberries")
    assert got.anchors.tolist() == ref.anchors.tolist()
    assert got.boxes_px.tolist() == ref.boxes_px.tolist() and got.chosen == ref.chosen
    diffs = [np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)) for a, b in zip(got.candidates, ref.candidates)]
    for diff in diffs:
        assert diff.mean() <= FP16_MEAN_LEVELS and diff.max() <= FP16_MAX_LEVELS, (diff.mean(), diff.max())
