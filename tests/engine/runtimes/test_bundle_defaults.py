"""A models folder's geometry.json settings travel into its bundle (manifest pipeline.edit_defaults):
`lr-edit --bundle` and `Editor.from_bundle` make the edit `--models DIR` makes, under what the
user passes."""

import json

import pytest

from lredit.engine.frontends.editor import Editor
from lredit.errors import BundleError

CARRIED = {"working_size": 64, "steps": 2, "paste_back": True, "final_pick": "objective"}


@pytest.fixture(scope="module")
def folder_bundle(tiny_models, tmp_path_factory):
    from lredit.export.exporter import ExportConfig, run_export
    from lredit.export.models import save_models
    from lredit.export.specs import ExportSettings

    root = tmp_path_factory.mktemp("models_with_geometry")
    save_models(tiny_models, root)
    (root / "geometry.json").write_text(json.dumps(CARRIED))
    out = tmp_path_factory.mktemp("folder_bundle")
    run_export(ExportConfig(out=out, models=str(root), settings=ExportSettings(working_size=64)))
    return out


def test_the_manifest_carries_the_folders_edit_settings_and_the_editor_applies_them(folder_bundle):
    manifest = json.loads((folder_bundle / "manifest.json").read_text())
    assert manifest["pipeline"]["edit_defaults"] == {"steps": 2, "paste_back": True, "final_pick": "objective"}
    assert manifest["pipeline"]["editor"] == "inpaint"
    cfg = Editor.from_bundle(folder_bundle).pipeline.config
    assert (cfg.steps, cfg.paste_back, cfg.final_pick, cfg.working_size) == (2, True, "objective", 64)


def test_lr_edit_applies_them_under_the_flags(folder_bundle, tmp_path, photo):
    from lredit.engine.frontends.cli import main

    photo.save(tmp_path / "in.png")
    base = [str(tmp_path / "in.png"), "a cat", "--bundle", str(folder_bundle), "--regions", "rgn", "--anchors", "2", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())["config"]
    assert (report["steps"], report["paste_back"], report["final_pick"]) == (2, True, "objective")
    assert main([*base, "--out", str(tmp_path / "b"), "--no-paste-back", "--steps", "3", "--final-pick", "rank"]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())["config"]
    assert (report["steps"], report["paste_back"], report["final_pick"]) == (3, False, "rank")


@pytest.mark.parametrize("defaults, message", [
    ({"paste_bak": True}, "pipeline.edit_defaults names \\['paste_bak'\\], which are not edit settings"),
    ({"steps": 0}, "pipeline.edit_defaults are not a valid config \\(invalid edit config: steps"),
])
def test_bad_edit_defaults_are_a_bundle_error(folder_bundle, tmp_path, defaults, message):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(folder_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["pipeline"]["edit_defaults"] = defaults
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        Editor.from_bundle(copy)
