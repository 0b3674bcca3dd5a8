"""The prepared GPU run (bench/gpu_lease.sh, bench/gpu_lease.py): its --dry-run end to end on the
CPU, so the day a GPU machine is lent the script is known to work; the target verdicts and the
budget rule on set inputs."""

import json
import subprocess
import sys
from pathlib import Path

from lredit.bench import gpu_lease, record

ROOT = Path(__file__).resolve().parents[2]
RETURNED_FILES_MAX = 8  # the device tool brings back at most 8 files from $OUT


def test_dry_run_writes_the_files_the_lease_brings_back(tmp_path, safe_path_env):
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_lease.sh"), "run", "--dry-run", "--out", str(out),
                           "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, env={**safe_path_env, "PYTHON": sys.executable}, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = {p.name for p in out.iterdir()}
    assert files == {"summary.md", "results.json", "results.md", "results.png", "tests.log", "lease.log"}
    assert len(files) <= RETURNED_FILES_MAX and all(p.is_file() for p in out.iterdir())
    doc = json.loads((out / "results.json").read_text())
    record.validate(doc)
    measured = {(r["backend"], r.get("regions"), r["anchors"]) for r in doc["records"] if r["status"] == "ok"}
    assert {("authors", None, 1), ("authors", None, 2)} <= measured
    for backend in ("engine-torch-cuda", "engine-torch-cuda-eager"):
        assert {(backend, "rgn", 1), (backend, "search", 2)} <= measured
    assert all(r["status"] == "ok" and r["resolution"] == 64 for r in doc["records"])
    summary = (out / "summary.md").read_text()
    assert "DRY RUN" in summary and "| lr-bench: engine-torch-cuda-compile | skipped |" in summary
    assert "| kernel microbench | unavailable |" in summary and "needs a CUDA GPU" in summary
    assert summary.count("| not measured | dry run on the CPU at tiny size |") == len(gpu_lease.TARGETS)
    tests_log = (out / "tests.log").read_text()
    assert "skipped" in tests_log and "failed" not in tests_log
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _record(backend, p50, speedup=None, anchors=9, regions="rgn"):
    return {"backend": backend, "status": "ok", "anchors": anchors, "steps": 50, "resolution": 512, "regions": regions,
            "end_to_end_ms": {"p50": p50}, "speedup_vs_authors": speedup}


def test_target_verdicts_read_the_k9_records_and_the_microbench(tmp_path):
    lease = gpu_lease.Lease(out=tmp_path, work=tmp_path, dry_run=False, budget_s=300)
    (tmp_path / "microbench.json").write_text(json.dumps({"rows": [
        {"variant": "fused kernel (projection first)", "ms": 0.02, "speedup_vs_authors": 12.5},
        {"variant": "fused kernel (projection fused)", "ms": 0.05, "speedup_vs_authors": 5.0},
        {"variant": "authors: conv + roi_align per size", "ms": 0.25, "speedup_vs_authors": 1.0}]}))
    doc = {"records": [_record("authors", 6000.0, 1.0), _record("engine-torch-cuda", 1100.0, 5.45),
                       _record("engine-torch-cuda-eager", 1500.0, 4.0), _record("engine-torch-cuda", 900.0, 7.0, anchors=1),
                       _record("engine-torch-cuda", 3000.0, 2.0, regions="search")]}
    rows = {row[0]: row[1:] for row in gpu_lease.target_rows(lease, doc)}
    assert rows["engine-torch-cuda K=9 x 50 at 512 <= 1200 ms"] == ["1100 ms", "met"]
    assert rows["engine-torch-cuda >= 5x authors' fp16 eager"] == ["5.45x", "met"]
    assert rows["engine-torch-cuda-eager K=9 x 50 at 512 <= 1200 ms"] == ["1500 ms", "not met"]
    assert rows["engine-torch-cuda-eager >= 5x authors' fp16 eager"] == ["4.00x", "not met"]
    assert rows["fused kernel (projection first) >= 10x authors' conv + roi_align"] == ["12.5x", "met"]
    assert rows["fused kernel (projection fused) >= 10x authors' conv + roi_align"] == ["5.0x", "not met"]
    assert len(rows) == 6  # K=1 and search records are not the K=9 one-pass target


def test_a_step_past_the_budget_is_skipped_not_started(tmp_path):
    lease = gpu_lease.Lease(out=tmp_path, work=tmp_path, dry_run=True, budget_s=20)
    step = gpu_lease.Step("slow", (sys.executable, "-c", "raise SystemExit(3)"), timeout_s=60)
    with open(tmp_path / "lease.log", "w") as log:
        outcome = gpu_lease.run_step(lease, step, log)
    assert outcome.status == "skipped" and "budget spent" in outcome.detail
    lease = gpu_lease.Lease(out=tmp_path, work=tmp_path, dry_run=True, budget_s=300)
    with open(tmp_path / "lease.log", "w") as log:
        outcome = gpu_lease.run_step(lease, step, log)
    assert outcome.status == "failed" and outcome.detail.startswith("exit 3")
