"""The one prepared GPU run (issue #21): everything a lent GPU machine is asked, in one command
that ends inside its time budget, and writes at most seven files into `--out`.

    bash bench/gpu_lease.sh run --out "$OUT"            # there, after the carried wheels install
    python -m lredit.bench.gpu_lease --out DIR --dry-run # here: the same steps on the CPU, tiny

Steps, each a subprocess with its own timeout cut to the budget left, logged to lease.log:
1. the `gpu` tests that can run there (ROI kernel against its reference, the torch-CUDA fp16 edit
   against the fp32 reference, graph replay against eager) -> tests.log;
2. the ROI-pool kernel microbench -> microbench.json;
3. lr-bench: the authors' path (diffusers eager fp16) and the torch-CUDA engine with and without
   graph replay, full-random models at 512, K=1 and K=9, 50 steps, one pass and pruned search;
4. lr-bench: the torch-CUDA engine with torch.compile, K=9 one pass (skipped in --dry-run: the
   inductor's CPU compile alone takes minutes on 2 cores);
5. the records merged -> results.json, results.md, results.png; the issue's targets checked ->
   summary.md.
A step that fails or times out is recorded, and the run goes on to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lredit.atomic import write_bytes_atomic

TEST_FILES = ("tests/kernels/test_kernels.py", "tests/engine/runtimes/test_torch_cuda.py")
TARGETS = {"engine_k9_ms": 1200.0, "speedup_vs_authors": 5.0, "kernel_speedup": 10.0}
"""Issue #21: engine K=9 x 50 steps at 512 within 1.2 s on an H100/H200; 5x over the authors'
fp16 eager path; the fused ROI kernel 10x over conv + roi_align per size."""
UNAVAILABLE_RC = 2
"""What the microbench and lr-bench's refusals exit with when the machine lacks what they need."""


@dataclass(frozen=True)
class Geometry:
    """What lr-bench measures: the issue's geometry, or the dry run's tiny one."""

    models: str
    working_size: int
    steps: int
    anchors: tuple[int, ...]
    runs: int
    warmup: int
    device: str
    precision: str
    microbench_runs: int

    def bench_args(self) -> list[str]:
        return ["--models", self.models, "--working-size", str(self.working_size), "--steps", str(self.steps),
                "--runs", str(self.runs), "--warmup", str(self.warmup), "--device", self.device,
                "--precision", self.precision, "--in-process", "--no-progress", "--overwrite"]


LEASE = Geometry("full-random", 512, 50, (1, 9), runs=3, warmup=1, device="cuda", precision="fp16", microbench_runs=200)
DRY_RUN = Geometry("tiny", 64, 3, (1, 2), runs=1, warmup=0, device="cpu", precision="fp32", microbench_runs=1)


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    timeout_s: float
    """The most this step may take (cut further to the budget left)."""
    stdout: str | None = None
    """A file in --out that receives the step's output (else lease.log only)."""
    skip: str | None = None
    """Why the step does not run, if it does not."""


@dataclass
class Outcome:
    name: str
    status: str
    """ok | failed | timed out | unavailable | skipped"""
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Lease:
    out: Path
    work: Path
    dry_run: bool
    budget_s: float
    started: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def geometry(self) -> Geometry:
        return DRY_RUN if self.dry_run else LEASE

    def left_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)


def plan(lease: Lease) -> list[Step]:
    g, py = lease.geometry, sys.executable
    k = ",".join(map(str, g.anchors))
    main = [py, "-m", "lredit.bench.cli", *g.bench_args(), "--anchors", k, "--regions", "rgn,search",
            "--backends", "authors,engine-torch-cuda,engine-torch-cuda-eager", "--json", str(lease.work / "main.json")]
    compiled = [py, "-m", "lredit.bench.cli", *g.bench_args(), "--anchors", str(max(g.anchors)), "--regions", "rgn",
                "--backends", "engine-torch-cuda-compile", "--json", str(lease.work / "compile.json")]
    return [
        Step("gpu tests", (py, "-m", "pytest", "-q", "-rs", "-m", "gpu", "-p", "no:cacheprovider", *TEST_FILES),
             120, stdout="tests.log"),
        Step("kernel microbench", (py, "-m", "lredit.bench.kernel_microbench", "--runs", str(g.microbench_runs),
                                   "--json", str(lease.out / "microbench.json")), 60),
        Step("lr-bench: authors, engine-torch-cuda, -eager", tuple(main), 240),
        Step("lr-bench: engine-torch-cuda-compile", tuple(compiled), 150,
             skip="--dry-run: the inductor's CPU compile alone takes minutes on 2 cores" if lease.dry_run else None),
    ]


def run_step(lease: Lease, step: Step, log) -> Outcome:
    if step.skip:
        return Outcome(step.name, "skipped", detail=step.skip)
    timeout = min(step.timeout_s, lease.left_s() - 15)  # 15 s kept for merging and the summary
    if timeout < 10:
        return Outcome(step.name, "skipped", detail=f"budget spent ({lease.left_s():.0f} s left)")
    log.write(f"\n===== {step.name} (timeout {timeout:.0f} s): {' '.join(step.argv)}\n")
    log.flush()
    start = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
        text, rc = done.stdout, done.returncode
    except subprocess.TimeoutExpired as exc:
        text = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc = None
    seconds = time.monotonic() - start
    log.write(text)
    log.flush()
    if step.stdout:
        (lease.out / step.stdout).write_text(text)
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    if rc is None:
        return Outcome(step.name, "timed out", seconds, f"after {timeout:.0f} s; last line: {last}")
    if rc == 0:
        return Outcome(step.name, "ok", seconds, last)
    status = "unavailable" if rc == UNAVAILABLE_RC and lease.dry_run else "failed"
    return Outcome(step.name, status, seconds, f"exit {rc}: {last}")


def merge_records(lease: Lease) -> dict | None:
    """main.json and compile.json (whichever exist) -> one lr-bench document in --out, rendered."""
    from .record import add_speedups, validate
    from .report import markdown, plot

    docs = [json.loads(p.read_text()) for p in (lease.work / "main.json", lease.work / "compile.json") if p.is_file()]
    if not docs:
        return None
    doc = {**docs[0], "records": [r for d in docs for r in d["records"]],
           "command": " ; ".join(d["command"] for d in docs)}
    add_speedups(doc["records"])
    validate(doc)
    write_bytes_atomic(lease.out / "results.json", (json.dumps(doc, indent=2) + "\n").encode())
    write_bytes_atomic(lease.out / "results.md", markdown(doc).encode())
    plot(doc, lease.out / "results.png")
    return doc


def target_rows(lease: Lease, doc: dict | None) -> list[list[str]]:
    """[target, measured, verdict] per issue-21 target."""
    if lease.dry_run:
        return [[name, "not measured", "dry run on the CPU at tiny size"] for name in TARGETS]
    g = lease.geometry
    rows = []
    ok = [r for r in (doc or {}).get("records", []) if r["status"] == "ok" and r["anchors"] == 9
          and r["steps"] == g.steps and r["resolution"] == g.working_size and r.get("regions") in (None, "rgn")]
    for r in (r for r in ok if r["backend"].startswith("engine-torch-cuda")):
        p50, speedup = r["end_to_end_ms"]["p50"], r.get("speedup_vs_authors")
        rows.append([f"{r['backend']} K=9 x {g.steps} at {g.working_size} <= {TARGETS['engine_k9_ms']:.0f} ms",
                     f"{p50:.0f} ms", "met" if p50 <= TARGETS["engine_k9_ms"] else "not met"])
        rows.append([f"{r['backend']} >= {TARGETS['speedup_vs_authors']:.0f}x authors' fp16 eager",
                     "-" if speedup is None else f"{speedup:.2f}x",
                     "no authors record" if speedup is None else ("met" if speedup >= TARGETS["speedup_vs_authors"] else "not met")])
    if not rows:
        rows.append(["engine K=9 targets", "no engine-torch-cuda record at K=9", "not measured"])
    bench = lease.out / "microbench.json"
    for row in (json.loads(bench.read_text())["rows"][:-1] if bench.is_file() else []):
        rows.append([f"{row['variant']} >= {TARGETS['kernel_speedup']:.0f}x authors' conv + roi_align",
                     f"{row['speedup_vs_authors']:.1f}x", "met" if row["speedup_vs_authors"] >= TARGETS["kernel_speedup"] else "not met"])
    return rows


def environment() -> list[str]:
    """What the machine has, as the lease found it (imports only: no GPU settings touched)."""
    lines = [f"python {sys.version.split()[0]}"]
    for name in ("torch", "diffusers", "transformers", "cupy", "onnxruntime", "triton"):
        try:
            module = __import__(name)
            lines.append(f"{name} {getattr(module, '__version__', '?')}")
        except ImportError as exc:
            lines.append(f"{name}: not importable ({exc})")
    try:
        import torch

        lines.append(f"CUDA device: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CUDA device: none")
    except (ImportError, RuntimeError) as exc:
        lines.append(f"CUDA device: unknown ({exc})")
    return lines


def summary(lease: Lease, doc: dict | None) -> str:
    g = lease.geometry
    lines = [f"# GPU lease run{' (DRY RUN: CPU, tiny models)' if lease.dry_run else ''}", "",
             f"Geometry: models {g.models}, {g.working_size}x{g.working_size}, {g.steps} steps, K in {list(g.anchors)}, "
             f"{g.runs} timed runs after {g.warmup} warm-up, {g.device} {g.precision}; budget {lease.budget_s:.0f} s, "
             f"used {time.monotonic() - lease.started:.0f} s.", "", "## Machine", "", *(f"- {x}" for x in environment()),
             "", "## Steps", "", "| step | status | seconds | detail |", "|---|---|---|---|"]
    lines += [f"| {o.name} | {o.status} | {o.seconds:.1f} | {o.detail.replace('|', '/')[:300]} |" for o in lease.outcomes]
    lines += ["", "## Targets (issue #21)", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in target_rows(lease, doc)]
    lines += ["", "Full records: results.json / results.md / results.png; test output: tests.log; every step: lease.log."]
    return "\n".join(lines) + "\n"


def run_lease(lease: Lease) -> int:
    lease.out.mkdir(parents=True, exist_ok=True)
    lease.work.mkdir(parents=True, exist_ok=True)
    with open(lease.out / "lease.log", "w") as log:
        for step in plan(lease):
            outcome = run_step(lease, step, log)
            lease.outcomes.append(outcome)
            print(f"gpu_lease: {outcome.name}: {outcome.status} ({outcome.seconds:.0f} s) {outcome.detail[:200]}", flush=True)
        try:
            doc = merge_records(lease)
        except Exception as exc:  # noqa: BLE001 - recorded; the summary is still written
            doc = None
            lease.outcomes.append(Outcome("merge records", "failed", 0.0, f"{type(exc).__name__}: {exc}"))
    text = summary(lease, doc)
    (lease.out / "summary.md").write_text(text)
    print(text)
    return 0 if all(o.status in ("ok", "skipped", "unavailable") for o in lease.outcomes) else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lredit.bench.gpu_lease", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="where the files that travel back go ($OUT there)")
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny size (CI)")
    p.add_argument("--budget-s", type=float, default=360.0,
                   help="wall-clock budget of all steps (default 360: a warm rerun still fits the 15-minute lease)")
    p.add_argument("--work", type=Path, help="intermediate files (default: a temporary folder)")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="lredit-lease-"))
    return run_lease(Lease(out=args.out, work=work, dry_run=args.dry_run, budget_s=args.budget_s))


if __name__ == "__main__":
    sys.exit(main())
