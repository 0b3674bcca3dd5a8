"""A bundle's ONNX graphs on ONNX Runtime (as lredit runs them) and on OpenVINO runtime, side by
side: median milliseconds per call at each graph's opt shapes (the manifest's profile), random
inputs, both on the CPU with the same thread count, and the largest output difference.

Runs in its own venv (openvino, onnxruntime, numpy and lredit without its dependencies, for the
manifest: `bench/peer_openvino.sh` makes it):

    bench/peer_openvino.sh BUNDLE --graphs unet,vae_decoder --runs 10 --json ov.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from lredit.manifest import GraphEntry, read_manifest


def feeds_for(entry: GraphEntry, rng: np.random.Generator, batch: int | None = None) -> dict[str, np.ndarray]:
    """Random inputs at the graph's opt shapes, the leading axis set to `batch` where the profile
    makes it dynamic (token ids for integer inputs)."""
    feeds = {}
    for tensor in entry.inputs:
        profile = entry.profile.get(tensor.name, {})
        shape = [int(d) for d in profile.get("opt") or tensor.opt_shape]
        if batch and profile and profile["min"][0] != profile["max"][0]:
            shape[0] = batch
        if "int" in tensor.dtype:
            feeds[tensor.name] = rng.integers(0, 1000, size=shape).astype(tensor.dtype)
        else:
            feeds[tensor.name] = rng.standard_normal(shape).astype(tensor.dtype)
    return feeds


def median_ms(call, runs: int) -> float:
    call()  # the first call allocates
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 2)


def compare(bundle: Path, graphs: list[str], runs: int, threads: int, batch: dict[str, int] | None = None) -> dict:
    import onnxruntime as ort
    import openvino as ov

    manifest = read_manifest(bundle, require_complete=False)
    unknown = [g for g in graphs if g not in manifest.graphs]
    if unknown:
        raise SystemExit(f"openvino_graphs: {bundle} has no graphs {unknown}; it has {sorted(manifest.graphs)}")
    core = ov.Core()
    core.set_property("CPU", {"INFERENCE_NUM_THREADS": threads})
    rng = np.random.default_rng(0)
    out = {"bundle": str(bundle), "threads": threads, "runs": runs, "batch": batch or {},
           "versions": {"openvino": ov.__version__, "onnxruntime": ort.__version__}, "graphs": {}}
    for name in graphs:
        entry = manifest.graphs[name]
        feeds = feeds_for(entry, rng, (batch or {}).get(name))
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # ONNX Runtime reads the variant lredit runs (attention fused); OpenVINO the standard graph
        session = ort.InferenceSession(str(manifest.path(entry.ort_file or entry.file)), options,
                                       providers=["CPUExecutionProvider"])
        # f32: OpenVINO would otherwise pick bf16 where the CPU has it, a different precision
        request = core.compile_model(str(manifest.path(entry.file)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
        ours = session.run(None, feeds)[0]
        theirs = np.asarray(next(iter(request.infer(feeds).values())))
        row = {"shapes": {k: list(v.shape) for k, v in feeds.items()},
               "ort_ms": median_ms(lambda: session.run(None, feeds), runs),
               "openvino_ms": median_ms(lambda: request.infer(feeds), runs),
               "max_abs_diff": float(np.abs(ours - theirs).max())}
        row["ort_over_openvino"] = round(row["ort_ms"] / row["openvino_ms"], 3)
        out["graphs"][name] = row
        print(f"{name}: ONNX Runtime {row['ort_ms']} ms, OpenVINO {row['openvino_ms']} ms, max |diff| {row['max_abs_diff']:.2e}",
              file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="openvino_graphs", description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path, help="an lr-export bundle (fp32)")
    p.add_argument("--graphs", default="unet,vae_decoder,vae_encoder", help="comma list of the bundle's graphs")
    p.add_argument("--runs", type=int, default=10, help="timed calls per graph and runtime (median)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", action="append", default=[], metavar="GRAPH=N",
                   help="a graph's leading axis instead of its opt, e.g. unet=2 (repeatable)")
    p.add_argument("--json", type=Path, help="write the record here")
    args = p.parse_args(argv)
    if not (args.bundle / "manifest.json").is_file():
        p.error(f"{args.bundle} has no manifest.json; export one with lr-export --out {args.bundle}")
    if args.runs < 1 or args.threads < 1:
        p.error("--runs and --threads must be at least 1")
    try:
        batch = {name: int(n) for name, n in (item.split("=") for item in args.batch)}
    except ValueError:
        p.error(f"--batch {args.batch}: expected GRAPH=N, e.g. unet=2")
    record = compare(args.bundle, [g.strip() for g in args.graphs.split(",") if g.strip()], args.runs, args.threads, batch)
    text = json.dumps(record, indent=2)
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.json)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
