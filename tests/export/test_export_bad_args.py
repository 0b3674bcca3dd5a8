"""Issue #24, lr-export: bad arguments are refused up front (exit 2, one line naming the rule),
before any model loads, and leave no folder behind; a failure mid-export removes the folder it
created."""

import pytest

from lredit.errors import ExportError
from lredit.export import exporter
from lredit.export.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--working-size", "63"], "--working-size 63: expected a multiple of 8, >= 64"),
        (["--working-size", "0"], "--working-size 0: expected a multiple of 8, >= 64"),
        (["--opset", "5"], "--opset 5 is not supported; the exporter writes opset 17 or 18"),
        (["--opset", "20"], "--opset 20 is not supported"),
    ],
)
def test_bad_export_arguments_are_refused_before_any_model_loads(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setattr(exporter, "load_models", lambda *a, **k: pytest.fail("a model was loaded"))
    out = tmp_path / "bundle"
    code, err = run(capsys, "--out", out, "--no-progress", *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("lr-export: error:") and message in err, err
    assert not out.exists()


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    code, err = run(capsys, "--out", mine, "--no-progress")
    assert code == 2 and err.count("\n") == 1 and f"--out {mine} exists and is not a folder" in err, err
    assert mine.read_text() == "mine"


def test_a_failed_export_leaves_no_empty_folder(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ExportError("the exporter failed")

    monkeypatch.setattr(exporter, "export_onnx", broken)
    out = tmp_path / "new" / "bundle"
    with pytest.raises(ExportError, match="the exporter failed"):
        exporter.run_export(exporter.ExportConfig(out=out, graphs=("rgn",)))
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(ExportError):
        exporter.run_export(exporter.ExportConfig(out=existing, graphs=("rgn",)))
    assert existing.is_dir()  # a folder the user made is left where it was


def test_a_models_folder_sets_the_working_size_under_the_flag():
    from lredit.config import EditConfig
    from lredit.export.cli import export_settings

    assert export_settings("shapes", None).working_size == 128  # the world's geometry.json
    assert export_settings("shapes", 256).working_size == 256
    assert export_settings("tiny", None).working_size == EditConfig().working_size


def test_a_models_folder_sets_the_graphs_half_sizes_and_the_bundle_fixes_them(tmp_path):
    import json

    from lredit.export.cli import export_settings
    from lredit.export.exporter import _edit_defaults

    (tmp_path / "geometry.json").write_text(json.dumps({"half_sizes": [3, 4, 5], "steps": 7}))
    assert export_settings(str(tmp_path), None).half_sizes == (3, 4, 5)  # the RGN graph's boxes
    assert _edit_defaults(str(tmp_path)) == {"steps": 7}  # geometry is the manifest's pipeline, not a default
