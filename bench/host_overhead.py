"""Host overhead per edit, graph time excluded: the Python runtime against the C++ host.

Both replay one recorded edit (`lr-edit --dump-graph-io`; made here at K=9, 50 steps on the tiny
bundle when --dump is not given, in region mode --regions: search, the default without an RGN
checkpoint, pruned unless --no-prune; or rgn) from memory, so no graph runs: Python through
`graph_io.ReplaySession`s in the ONNX Runtime pipeline, C++ through its ReplayRunner
(cpp/examples/bench_host.cpp). Host time = edit time - time inside the sessions, as wall
time and as process CPU time (the steadier figure on a machine shared with other work). Python
is timed by bench.timing.measure; the C++ binary runs the same warm-up/runs loop itself.

    python -m lredit.bench.host_overhead --bundle B --cpp-bench BUILD/lredit_bench_host [--dump D]
        [--regions search|rgn] [--no-prune] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lredit.config import EditConfig
from lredit.engine.frontends.graph_io import record_edit, replay_sessions
from lredit.engine.runtimes.bundle_loader import BundlePipeline, bundle_assets, bundle_config
from lredit.kernels import roi_pool_ref
from lredit.manifest import read_manifest

from .record import device_info
from .timing import measure, summarize

IMAGE = Path(__file__).resolve().parents[1] / "examples" / "table.png"
PROMPT = "a bowl of strawberries"


class _TimedSession:
    def __init__(self, session, clock: dict):
        self.session, self.clock = session, clock
        self.input_names, self.output_names = session.input_names, session.output_names

    def run(self, feeds):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return self.session.run(feeds)
        finally:
            self.clock["wall"] += time.perf_counter() - wall
            self.clock["cpu"] += time.process_time() - cpu


def _edit_settings(index: dict) -> dict:
    c = index["config"]
    keys = ("anchors", "steps", "seed", "scheduler", "guidance", "paste_back", "anchor_spacing", "prune", "prune_fractions",
            "prune_keep", "max_unet_batch")
    settings = {k: c[k] for k in keys if k in c}
    return {**settings, "regions": c.get("regions") or "search"}  # the recorded mode (the default: search)


def python_host(bundle: Path, dump: Path, runs: int, warmup: int) -> dict:
    """Median/min host ms of the Python pipeline replaying `dump`."""
    index = json.loads((dump / "index.json").read_text())
    manifest = read_manifest(bundle)
    clock = {"wall": 0.0, "cpu": 0.0}
    replays = replay_sessions(dump)
    sessions = {g: _TimedSession(s, clock) for g, s in replays.items()}
    pipeline = BundlePipeline(sessions, bundle_assets(manifest, roi_pool_ref.roi_pool_anchors),
                              bundle_config(manifest, EditConfig()), manifest)
    image = Image.fromarray(np.load(dump / index["image"]))
    settings = _edit_settings(index)
    chosen = []

    def run_once() -> dict:
        for s in replays.values():
            s.cursor = 0
        clock["wall"] = clock["cpu"] = 0.0
        cpu = time.process_time()
        chosen.append(pipeline.edit(image, index["prompt"], index.get("source_caption"), **settings).chosen)
        return {"graph": clock["wall"] * 1000.0, "host_cpu": (time.process_time() - cpu - clock["cpu"]) * 1000.0}

    m = measure(run_once, runs=runs, warmup=warmup)
    host = [total - graph for total, graph in zip(m.runs_ms, m.stages_ms["graph"])]
    return {"host_wall_ms": summarize(host), "host_cpu_ms": summarize(m.stages_ms["host_cpu"]),
            "graph_wall_ms": summarize(m.stages_ms["graph"]), "chosen": chosen[-1]}


def cpp_host(binary: Path, bundle: Path, dump: Path, runs: int, warmup: int) -> dict:
    done = subprocess.run([str(binary), str(bundle), str(dump), str(runs), str(warmup)], capture_output=True, text=True, check=True)
    out = json.loads(done.stdout)
    return {k: out[k] for k in ("host_wall_ms", "host_cpu_ms", "graph_wall_ms", "chosen", "tokenizer_and_noise", "stages_wall_ms_p50")}



def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lredit.bench.host_overhead", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True, help="a tiny bundle (lr-export --models tiny)")
    p.add_argument("--cpp-bench", type=Path, required=True, help="the lredit_bench_host binary (cpp, Release build)")
    p.add_argument("--dump", type=Path, help="a graph-io recording; made at K=9, 50 steps when missing")
    p.add_argument("--anchors", type=int, default=9)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--regions", choices=("search", "rgn"), default="search", help="region mode of the recorded edit")
    p.add_argument("--no-prune", action="store_true", help="search: the exact search (every pair to the end)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the record here")
    args = p.parse_args(argv)
    dump = args.dump
    if dump is None or not (dump / "index.json").exists():
        from lredit.engine.frontends.editor import Editor

        mode = args.regions + ("_exact" if args.regions == "search" and args.no_prune else "")
        dump = dump or Path(f"host_overhead_dump_{mode}_k{args.anchors}_s{args.steps}")
        record_edit(Editor.from_bundle(args.bundle).pipeline, IMAGE, PROMPT, dump, anchors=args.anchors, steps=args.steps,
                    regions=args.regions, prune=not args.no_prune)
    py = python_host(args.bundle, dump, args.runs, args.warmup)
    cpp = cpp_host(args.cpp_bench, args.bundle, dump, args.runs, args.warmup)
    if py["chosen"] != cpp["chosen"]:
        raise SystemExit(f"host_overhead: the Python and C++ replays chose {py['chosen']} and {cpp['chosen']}: not the same edit")
    index = json.loads((dump / "index.json").read_text())
    record = {"cpu": device_info("cpu")["name"], "settings": _edit_settings(index), "working_size": index["config"]["working_size"],
              "runs": args.runs, "warmup": args.warmup, "python": py, "cpp": cpp,
              "host_wall_ratio_p50": round(py["host_wall_ms"]["p50"] / cpp["host_wall_ms"]["p50"], 2),
              "host_cpu_ratio_p50": round(py["host_cpu_ms"]["p50"] / cpp["host_cpu_ms"]["p50"], 2)}
    text = json.dumps(record, indent=2) + "\n"
    if args.json:
        from lredit.atomic import write_bytes_atomic

        write_bytes_atomic(args.json, text.encode())
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
