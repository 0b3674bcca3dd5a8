"""lr-bench: a tiny run through the CLI, its JSON against the schema, the formatters over it."""

import json
import os

import numpy as np
import pytest

from lredit.bench import record
from lredit.bench.cli import main
from lredit.bench.timing import measure, summarize


def test_tiny_run_writes_valid_json_markdown_and_plot(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "b"
    code = main(["--bundle", str(tiny_bundle), "--backends", "authors,engine-torch,engine-ort,engine-trt",
                 "--anchors", "2", "--steps", "2", "--runs", "2", "--warmup", "1", "--working-size", "64",
                 "--json", f"{out}.json", "--markdown", f"{out}.md", "--plot", f"{out}.png", "--no-progress"])
    console = capsys.readouterr().out
    assert code == 0, console
    doc = json.loads((tmp_path / "b.json").read_text())
    record.validate(doc)
    by = {r["backend"]: r for r in doc["records"]}
    assert set(by) == {"authors", "engine-torch", "engine-ort", "engine-trt"}
    for name in ("authors", "engine-torch", "engine-ort"):
        r = by[name]
        assert r["status"] == "ok" and r["anchors"] == 2 and r["steps"] == 2 and r["resolution"] == 64
        assert len(r["warmup_ms"]) == 1
        e2e = r["end_to_end_ms"]
        assert 0 < e2e["min"] <= e2e["p50"] <= e2e["p90"] <= e2e["max"]
        assert r["stages_ms"]["denoise"]["p50"] > 0 and r["peak_rss_mb"] > 0
        assert r["speedup_vs_authors"] == pytest.approx(by["authors"]["end_to_end_ms"]["p50"] / e2e["p50"], rel=1e-2)
    assert by["engine-trt"]["status"] == "unavailable" and "TensorRT" in by["engine-trt"]["reason"]
    # Memory per backend: each was measured in its own process, none of them this one.
    pids = [by[name]["pid"] for name in ("authors", "engine-torch", "engine-ort", "engine-trt")]
    assert len(set(pids)) == 4 and os.getpid() not in pids
    for name in ("authors", "engine-torch", "engine-ort"):
        r = by[name]
        assert r["isolation"] == "process" and r["load_ms"] > 0 and 0 < r["steady_rss_mb"] <= r["peak_rss_mb"]
    assert "torch" not in by["engine-ort"]["versions"]  # its process never imported torch
    md = (tmp_path / "b.md").read_text()
    assert "| engine-ort | 2 | 2 |" in md and "speed-up vs authors" in md and doc["command"] in md
    png = (tmp_path / "b.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert "engine-ort" in console


def test_schema_rejects_a_record_without_device_or_numbers():
    doc = {"schema_version": 1, "date": "2026-11-25T00:00:00", "command": "lr-bench", "host": {"kind": "cpu", "name": "x"},
           "records": [{"backend": "engine-ort", "status": "ok"}]}
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        record.validate(doc)
    doc["records"] = [{**_minimal_ok(), "end_to_end_ms": {"min": 1, "p50": 2, "p90": 3}}]
    with pytest.raises(jsonschema.ValidationError, match="'max' is a required property"):
        record.validate(doc)
    doc["records"] = [_minimal_ok()]
    record.validate(doc)


def _minimal_ok():
    stats = {"min": 1, "p50": 2, "p90": 3, "max": 4}
    return {"backend": "engine-ort", "status": "ok", "device": {"kind": "cpu", "name": "x"},
            "versions": {"python": "3.11"}, "models": "tiny", "precision": "fp32", "anchors": 9, "steps": 25,
            "resolution": 512, "scheduler": "model", "runs": 5, "warmup": 1, "clock": "perf_counter",
            "end_to_end_ms": stats, "stages_ms": {"dino": stats}, "warmup_ms": [5.0], "edits_per_minute": 30.0,
            "peak_rss_mb": 100.0, "peak_device_mb": None, "speedup_vs_authors": None}


def test_timing_loop_keeps_warmup_apart_and_summarises():
    calls = []

    def run_once():
        calls.append(1)
        return {"stage": float(len(calls))}

    m = measure(run_once, runs=4, warmup=2)
    assert len(calls) == 6 and len(m.warmup_ms) == 2 and len(m.runs_ms) == 4
    assert m.stages_ms["stage"] == [3.0, 4.0, 5.0, 6.0]  # warm-up stage times are not mixed in
    assert summarize([1, 2, 3, 4, 5]) == {"min": 1.0, "p50": 3.0, "p90": 4.6, "max": 5.0}
    assert m.peak_rss_bytes > 0
    with pytest.raises(ValueError, match="runs=0"):
        measure(run_once, runs=0, warmup=0)


@pytest.mark.parametrize("argv, message", [
    (["--backends", "authors,fast"], "--backends fast: unknown"),
    (["--runs", "0"], "--runs 0: need at least 1"),
    (["--anchors", "0"], "each K must be >= 1"),
    (["--image", "/nonexistent.png"], "--image /nonexistent.png: no such file"),
    (["--peer", "/nonexistent.json"], "--peer /nonexistent.json: no such file"),
    (["--json", __file__], "exists; pass --overwrite to replace it"),
])
def test_bad_flags_are_clear_errors(argv, message, capsys):
    assert main([*argv, "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_peer_that_does_not_follow_the_schema_is_refused(tmp_path, capsys):
    bad = tmp_path / "peer.json"
    bad.write_text(json.dumps({"schema_version": 1, "records": []}))
    code = main(["--backends", "engine-torch", "--peer", str(bad), "--anchors", "1", "--steps", "1", "--runs", "1",
                 "--warmup", "0", "--working-size", "64", "--no-progress"])
    assert code == 2 and "does not follow bench/record.schema.json" in capsys.readouterr().err


def test_short_backend_names_are_accepted():
    from lredit.bench.cli import parse

    assert parse(["--backends", "authors,ort,torch,trt"]).backends == ("authors", "engine-ort", "engine-torch", "engine-trt")


def test_bench_image_is_deterministic():

    from lredit.bench.backends import bench_image

    assert np.array_equal(bench_image(), bench_image())


def test_report_rerenders_a_saved_record_and_peers_compare_on_inpaint(tmp_path, capsys):
    def stats(p50):
        return {"min": p50, "p50": p50, "p90": p50, "max": p50}

    authors = {**_minimal_ok(), "backend": "authors", "end_to_end_ms": stats(120.0),
               "stages_ms": {"inpaint": stats(100.0)}}
    peer = {**_minimal_ok(), "backend": "optimum-ort (peer)", "scope": "inpaint", "end_to_end_ms": stats(50.0),
            "stages_ms": {"inpaint": stats(50.0)}}
    ours = {**_minimal_ok(), "backend": "engine-ort", "end_to_end_ms": stats(40.0), "stages_ms": {"inpaint": stats(30.0)}}
    doc = {"schema_version": 1, "date": "2026-11-25T00:00:00", "command": "lr-bench x",
           "host": {"kind": "cpu", "name": "x"}, "records": [authors, peer, ours]}
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(doc))
    assert main(["--report", str(saved), "--markdown", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png")]) == 0
    md = (tmp_path / "r.md").read_text()
    assert "| 2.00x (inpaint) |" in md  # authors' inpaint 100 ms / the peer's 50 ms
    assert "| 3.00x |" in md  # end to end: 120 / 40
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert main(["--report", str(tmp_path / "missing.json")]) == 2
    assert "--report" in capsys.readouterr().err
    assert main(["--report", str(saved), "--markdown", str(tmp_path / "r.md")]) == 2
    assert "r.md exists; pass --overwrite" in capsys.readouterr().err
    assert main(["--report", str(saved), "--markdown", str(tmp_path / "r.md"), "--overwrite"]) == 0


def test_in_process_records_say_they_shared_the_process(tiny_bundle, tmp_path):
    code = main(["--bundle", str(tiny_bundle), "--backends", "engine-ort", "--anchors", "1", "--steps", "1", "--runs", "1",
                 "--warmup", "0", "--working-size", "64", "--in-process", "--json", str(tmp_path / "b.json"),
                 "--markdown", str(tmp_path / "b.md"), "--no-progress"])
    assert code == 0
    (r,) = json.loads((tmp_path / "b.json").read_text())["records"]
    assert r["pid"] == os.getpid() and r["isolation"] == "shared" and r["load_ms"] > 0
    assert " (shared) |" in (tmp_path / "b.md").read_text()


def test_a_child_that_dies_gives_failed_records():
    """A measuring process killed from outside (as the kernel's OOM killer would) is a failed
    point naming the exit code, not a hang or a missing row."""
    import multiprocessing
    import signal

    from lredit.bench import isolated
    from lredit.bench.config import BenchConfig

    cfg = BenchConfig(models="tiny", backends=("engine-torch",), anchors=(1, 2), steps=(1,), runs=2, warmup=0,
                      working_size=64)

    def kill_children(_what):
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

    from PIL import Image

    from lredit.bench.backends import bench_image

    records = isolated.measure_in_child("engine-torch", cfg, None, Image.fromarray(bench_image(96)), kill_children)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert "exited with code -9 (killed: out of memory?)" in records[0]["reason"]


def test_region_variants_are_valid_edit_configs_and_search_crop_decodes_windows():
    from lredit.bench.config import REGION_VARIANTS, region_overrides
    from lredit.config import EditConfig

    configs = {v: EditConfig().replace(**region_overrides(v)) for v in REGION_VARIANTS}
    crop = configs["search-crop"]
    assert (crop.prune, crop.prune_decode, crop.paste_back) == (True, "crop", True)
    assert configs["search"].prune_decode == "full" and not configs["search-noprune"].prune
    schema = record.load_schema()["$defs"]["record"]["properties"]["regions"]["enum"]
    assert sorted(schema) == sorted(REGION_VARIANTS)  # every variant's record validates
    # --prune-fractions / --prune-keep reach the pruned search variants only, and are bounded
    from lredit.bench.cli import parse
    from lredit.errors import InputError

    cfg = parse(["--regions", "rgn,search,search-crop,search-noprune", "--prune-fractions", "0.1", "--prune-keep", "0.16"])
    pruned = {v: region_overrides(v, cfg.validated().pruning()) for v in cfg.regions}
    assert pruned["search"]["prune_fractions"] == pruned["search-crop"]["prune_fractions"] == (0.1,)
    assert pruned["search-crop"]["prune_keep"] == 0.16 and "prune_keep" not in pruned["search-noprune"]
    assert "prune_fractions" not in pruned["rgn"]
    with pytest.raises(InputError, match="prune_keep"):
        parse(["--regions", "search", "--prune-keep", "1.5"]).validated()
