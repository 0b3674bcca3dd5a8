"""A bundle is confined to its folder: a manifest naming a file outside it is refused, whatever
the file's sha256 says."""

import json
import os
import shutil

import pytest

from lredit.bundle import sha256_file
from lredit.engine.frontends.cli import main
from lredit.engine.frontends.editor import Editor
from lredit.errors import BundleError
from lredit.manifest import read_manifest


def _copy(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    return bundle, json.loads((bundle / "manifest.json").read_text())


def _evil_unet(tmp_path, bundle):
    """A working UNet graph outside the bundle, with its true sha256."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    evil = outside / "evil_unet.onnx"
    shutil.copyfile(bundle / "onnx" / "unet.onnx", evil)
    return evil, sha256_file(evil)


def test_unet_outside_the_bundle_is_refused_by_editor_and_lr_edit(tiny_bundle, tmp_path, photo, capsys):
    bundle, manifest = _copy(tiny_bundle, tmp_path)
    _, digest = _evil_unet(tmp_path, bundle)
    unet = manifest["graphs"]["unet"]
    unet.pop("ort_file", None)
    unet["file"] = "../outside/evil_unet.onnx"
    unet["files"] = {"../outside/evil_unet.onnx": digest}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    for backend in ("ort", "torch", "trt"):
        with pytest.raises(BundleError, match=r"names '../outside/evil_unet.onnx', which is not a path inside the bundle"):
            Editor.from_bundle(bundle, backend=backend)
    photo.save(tmp_path / "in.png")
    code = main([str(tmp_path / "in.png"), "a cat", "--bundle", str(bundle), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "evil_unet.onnx" in err and err.startswith("lr-edit: error:")
    assert not (tmp_path / "out" / "result.png").exists()


VARIANTS = {
    "absolute graph file": lambda m, evil, digest: m["graphs"]["unet"].update(file=str(evil), files={str(evil): digest}),
    "ort_file": lambda m, evil, digest: m["graphs"]["unet"].update(ort_file="onnx/../../outside/evil_unet.onnx"),
    "external data": lambda m, evil, digest: m["graphs"]["unet"]["files"].update({"../outside/evil_unet.onnx.data": digest}),
    "engine": lambda m, evil, digest: m["graphs"]["unet"].update(
        engine={"file": "/tmp/x.engine", "sha256": "0", "tensorrt": "10", "sm": "sm90"}),
    "asset": lambda m, evil, digest: m["assets"].update({"../outside/evil_unet.onnx": digest}),
}


@pytest.mark.parametrize("field", sorted(VARIANTS))
def test_absolute_or_climbing_paths_are_refused_in_every_field(tiny_bundle, tmp_path, field):
    bundle, manifest = _copy(tiny_bundle, tmp_path)
    evil, digest = _evil_unet(tmp_path, bundle)
    VARIANTS[field](manifest, evil, digest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not a path inside the bundle"):
        read_manifest(bundle)


def test_symlink_out_of_the_bundle_is_refused(tiny_bundle, tmp_path):
    bundle, manifest = _copy(tiny_bundle, tmp_path)
    evil, _ = _evil_unet(tmp_path, bundle)
    (bundle / "onnx" / "unet.onnx").unlink()
    os.symlink(evil, bundle / "onnx" / "unet.onnx")
    with pytest.raises(BundleError, match=r"resolves to .*evil_unet.onnx, outside the bundle"):
        Editor.from_bundle(bundle, backend="ort")
    # A link that stays inside the bundle is fine.
    (bundle / "onnx" / "unet.onnx").unlink()
    shutil.copyfile(evil, bundle / "onnx" / "real_unet.onnx")
    os.symlink("real_unet.onnx", bundle / "onnx" / "unet.onnx")
    assert read_manifest(bundle).path("onnx/unet.onnx").resolve() == (bundle / "onnx" / "real_unet.onnx").resolve()
