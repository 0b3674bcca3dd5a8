"""Cold start: ONNX Runtime's optimised graphs cached per key, stamp-checked bundle files."""

import json
import logging
import os
import shutil

import numpy as np
import pytest

from lredit.engine.frontends.editor import Editor
from lredit.engine.runtimes.file_checks import Verify, check_files
from lredit.engine.runtimes.session_cache import CacheStatus, SessionCache
from lredit.errors import BundleError
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import read_manifest


def _statuses(editor):
    return {g.graph: g.cache for g in editor.pipeline.open_report.graphs}


def _open(bundle, cache, **kw):
    from lredit.engine.runtimes.ort_runtime import load_ort_pipeline

    return Editor(load_ort_pipeline(bundle, session_cache=cache, **kw), "ort")


def test_second_open_uses_the_cache_and_gives_the_same_edit(tiny_bundle, tmp_path, photo):
    cache = SessionCache(tmp_path / "cache")
    first = _open(tiny_bundle, cache)
    assert set(_statuses(first).values()) == {CacheStatus.BUILT}
    assert sorted(p.name.rsplit("-", 1)[0] for p in cache.root.iterdir() if not p.name.startswith(".")
                  and p.name != "verified") == sorted(PIPELINE_GRAPHS)
    second = _open(tiny_bundle, cache)
    assert _statuses(second) == {g: CacheStatus.HIT for g in PIPELINE_GRAPHS}
    a = first.edit(photo, "a cat", steps=2, anchors=2).image
    b = second.edit(photo, "a cat", steps=2, anchors=2).image
    assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_changed_onnxruntime_version_or_provider_is_another_key(tiny_bundle, tmp_path, monkeypatch):
    import onnxruntime as ort

    from lredit.engine.runtimes import ort_runtime

    cache = SessionCache(tmp_path / "cache")
    _open(tiny_bundle, cache)
    monkeypatch.setattr(ort, "__version__", ort.__version__ + ".post-test")
    assert set(_statuses(_open(tiny_bundle, cache)).values()) == {CacheStatus.BUILT}
    monkeypatch.undo()
    assert set(_statuses(_open(tiny_bundle, cache)).values()) == {CacheStatus.HIT}
    # Another provider list (here the CPU provider named twice, as a stand-in) is another key.
    manifest = read_manifest(tiny_bundle)
    key = ort_runtime.graph_key("unet", tiny_bundle, manifest.graphs["unet"].files, ["CPUExecutionProvider"], {})
    other = ort_runtime.graph_key("unet", tiny_bundle, manifest.graphs["unet"].files,
                                  ["CPUExecutionProvider", "CPUExecutionProvider"], {})
    assert key.digest() != other.digest() and cache.folder(key) != cache.folder(other)
    monkeypatch.setitem(ort_runtime.SESSION_OPTIONS, "graph_optimization_level", "ORT_ENABLE_EXTENDED")
    assert set(_statuses(_open(tiny_bundle, cache)).values()) == {CacheStatus.BUILT}


def test_corrupt_cache_entry_is_rebuilt_with_a_log_line(tiny_bundle, tmp_path, caplog):
    cache = SessionCache(tmp_path / "cache")
    _open(tiny_bundle, cache)
    folders = {p.name.rsplit("-", 1)[0]: p for p in cache.root.iterdir() if not p.name.startswith(".")}
    model = folders["unet"] / "model.onnx"
    st = model.stat()
    with open(model, "r+b") as f:  # same size, other bytes, and the mtime put back: only the sha256 tells
        f.seek(200)
        f.write(b"\x00\x01\x02")
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    (folders["dino"] / "entry.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="lredit.engine.runtimes.session_cache"):
        editor = _open(tiny_bundle, cache)
    statuses = _statuses(editor)
    assert statuses["unet"] is CacheStatus.REBUILT and statuses["dino"] is CacheStatus.REBUILT
    assert {g for g, s in statuses.items() if s is CacheStatus.HIT} == set(PIPELINE_GRAPHS) - {"unet", "dino"}
    lines = [r.getMessage() for r in caplog.records]
    assert any("unet" in line and "corrupt (sha256)" in line and "rebuilding" in line for line in lines), lines
    assert any("dino" in line and "entry.json unreadable" in line for line in lines), lines
    assert set(_statuses(_open(tiny_bundle, cache)).values()) == {CacheStatus.HIT}


def test_stamps_hash_each_file_once_and_a_rewritten_file_again(tiny_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    manifest = read_manifest(bundle)
    files = dict(manifest.graphs["unet"].files)
    root = tmp_path / "cache"
    assert check_files(manifest, files, Verify.STAMP, root) == len(files)
    assert check_files(manifest, files, Verify.STAMP, root) == 0
    assert check_files(manifest, files, Verify.FULL, root) == len(files)
    assert check_files(manifest, files, Verify.OFF, root) == 0
    target = bundle / manifest.graphs["unet"].ort_graph
    data = bytearray(target.read_bytes())
    data[120] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="corrupt \\(sha256 mismatch\\).*unet.ort.onnx"):
        check_files(manifest, files, Verify.STAMP, root)
    data[120] ^= 0xFF
    target.write_bytes(bytes(data))  # right again, with a new mtime: hashed once, then stamped
    assert check_files(manifest, files, Verify.STAMP, root) == 1
    assert check_files(manifest, files, Verify.STAMP, root) == 0
    stamps = json.loads(next((root / "verified").iterdir()).read_text())
    assert set(stamps) == set(files)


def test_lr_edit_prints_the_open_time(tiny_bundle, tmp_path, capsys):
    from pathlib import Path

    from lredit.engine.frontends.cli import main

    example = Path(__file__).resolve().parents[3] / "examples" / "table.png"
    args = [str(example), "a cat", "--bundle", str(tiny_bundle), "--steps", "1", "--anchors", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--verify"]) == 0
    err = capsys.readouterr().err
    assert f"lr-edit: opened {tiny_bundle} in " in err and "verify full" in err
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "session cache: 8 hit; files hashed: 0 (verify stamp)" in err, err
    assert os.environ["LREDIT_SESSION_CACHE"].startswith(str(tmp_path.parent.parent))
