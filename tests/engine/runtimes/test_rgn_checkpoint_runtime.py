"""A loaded or learned RGN in the runtime: the numpy RGN replaces the bundle's `rgn` graph, its
projection feeds pooling, and lr-edit --bundle --rgn reproduces the checkpoint's choices."""

import json

import numpy as np

from lredit import safetensors_io
from lredit.config import EditConfig
from lredit.engine.frontends.cli import main as edit_main
from lredit.engine.frontends.editor import Editor
from lredit.engine.ops.rgn_numpy import NumpyRgnSession
from lredit.engine.runtimes.rgn_runtime import with_rgn_checkpoint
from lredit.rgn_checkpoint import save_rgn

FAST = {"working_size": 64, "steps": 3, "anchors": 3}  # the tiny bundle's geometry (conftest)


def _forcing(params, size):
    """The same RGN with its last bias pushing every anchor to `size`."""
    head = dict(params.head)
    head["7.bias"] = params.head["7.bias"] + 50.0 * (np.arange(params.sizes) == size)
    return params.with_head(head)


def test_checkpoint_in_a_bundle_pipeline_runs_on_the_numpy_rgn(tiny_bundle, tmp_path, photo):
    base = Editor.from_bundle(tiny_bundle, config=EditConfig(**FAST)).pipeline
    before = base.edit(photo, "a cat")
    target = (int(before.size_index[0]) + 1) % base.assets.rgn.sizes
    path = tmp_path / "rgn.safetensors"
    save_rgn(path, _forcing(base.assets.rgn, target))
    pipe = with_rgn_checkpoint(Editor.from_bundle(tiny_bundle, config=EditConfig(**FAST)).pipeline, path)
    assert isinstance(pipe.sessions["rgn"], NumpyRgnSession)
    result = pipe.edit(photo, "a cat")
    assert (result.size_index == target).all() and result.warnings == []
    np.testing.assert_array_equal(result.anchors, before.anchors)


def test_head_only_checkpoint_keeps_the_bundle_projection_and_warns(tiny_bundle, tmp_path, photo, capsys):
    pipe = Editor.from_bundle(tiny_bundle, config=EditConfig(**FAST)).pipeline
    state = _forcing(pipe.assets.rgn, 1).state_dict()
    path = tmp_path / "head.safetensors"
    safetensors_io.save_file(path, {k: v for k, v in state.items() if k.startswith("anchor_net.")})
    out = tmp_path / "out"
    code = edit_main([str(_save(photo, tmp_path)), "a cat", "--bundle", str(tiny_bundle), "--rgn", str(path), "--out", str(out),
                      "--working-size", "64", "--steps", "3", "--anchors", "3", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert any("holds only the head" in w for w in report["warnings"]) and "holds only the head" in err
    assert [c["size_index"] for c in report["candidates"]] == [1, 1, 1]
    np.testing.assert_array_equal(pipe.assets.projection_weight, pipe.assets.rgn.projection_weight)


def _save(photo, tmp_path):
    path = tmp_path / "photo.png"
    photo.save(path)
    return path


def test_checkpoints_learn_and_load_without_torch(tiny_bundle, tmp_path):
    """Learning, saving and loading an RGN, and editing with it, import no torch."""
    import subprocess
    import sys

    code = f"""
import sys
import numpy as np
from PIL import Image
from lredit.engine.frontends.editor import Editor
from lredit.rgn_checkpoint import save_rgn
from lredit.engine.ops.rgn_learning import learn_sizes
from lredit.engine.runtimes.rgn_runtime import with_rgn_checkpoint
pipe = Editor.from_bundle({str(tiny_bundle)!r}).pipeline
pooled = np.random.default_rng(0).normal(size=(3, pipe.assets.rgn.sizes * pipe.assets.rgn.channels, 8, 8))
learned = learn_sizes(pooled, pipe.assets.rgn, np.random.default_rng(1).uniform(size=(3, pipe.assets.rgn.sizes)))
save_rgn({str(tmp_path / 'r.safetensors')!r}, learned.params)
pipe = with_rgn_checkpoint(pipe, {str(tmp_path / 'r.safetensors')!r})
r = pipe.edit(Image.new("RGB", (80, 60), (120, 30, 200)), 'a cat', steps=2, anchors=2)
heavy = [m for m in ('torch', 'diffusers', 'transformers', 'safetensors') if m in sys.modules]
print('HEAVY', heavy, r.chosen)
"""
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
