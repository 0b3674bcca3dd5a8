"""fp16 drift, and which graph drives it: edits from an fp32 bundle against edits from hybrids
that take one graph (or all but one) from an fp16 bundle of the same models.

    python -m lredit.bench.precision_drift --fp32 B32 --fp16 B16 --steps 10 --seeds 0,3,11 --json drift.json

Both bundles must come from the same models and geometry (lr-export --precision fp32 / fp16).
Each row: candidates' pixel difference to the fp32 edit in uint8 levels (mean, and the max over
candidates), and in how many edits the chosen candidate changed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lredit.atomic import write_bytes_atomic, write_json_atomic
from lredit.bundle import MANIFEST
from lredit.config import Precision
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import read_manifest


@dataclass(frozen=True)
class DriftRow:
    fp16_graphs: tuple[str, ...]
    mean_levels: float
    """Mean |candidate - fp32 candidate| over pixels, averaged over candidates and edits."""
    max_levels: int
    """Largest single-pixel difference over all candidates and edits."""
    chosen_changed: int
    edits: int


def hybrid_bundle(fp32: Path, fp16: Path, out: Path, from_fp16: tuple[str, ...]) -> Path:
    """A copy of the fp32 bundle whose graphs in `from_fp16` are the fp16 bundle's."""
    shutil.copytree(fp32, out, ignore=shutil.ignore_patterns("trt"))
    full, half = read_manifest(fp32), read_manifest(fp16)
    # Writing a new bundle's manifest: the JSON is edited as the exporter writes it; reads use the typed one.
    data, half_data = json.loads((fp32 / MANIFEST).read_text()), json.loads((fp16 / MANIFEST).read_text())
    for graph in from_fp16:
        for rel in full.graphs[graph].files:
            (out / rel).unlink(missing_ok=True)
        for rel in half.graphs[graph].files:
            write_bytes_atomic(out / rel, (fp16 / rel).read_bytes())
        data["graphs"][graph] = half_data["graphs"][graph]
    write_json_atomic(out / MANIFEST, data)
    return out


def _edits(bundle: Path, image, prompt: str, steps: int, anchors: int, seeds: tuple[int, ...]):
    from lredit.engine.runtimes.ort_runtime import load_ort_pipeline

    pipeline = load_ort_pipeline(bundle, verify=False, session_cache=False)
    return [pipeline.edit(image, prompt, steps=steps, anchors=anchors, seed=seed) for seed in seeds]


def compare(reference, edits, fp16_graphs: tuple[str, ...]) -> DriftRow:
    means, peak, changed = [], 0, 0
    for ref, got in zip(reference, edits):
        changed += int(ref.chosen != got.chosen)
        for a, b in zip(ref.candidates, got.candidates):
            diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
            means.append(float(diff.mean()))
            peak = max(peak, int(diff.max()))
    return DriftRow(fp16_graphs, round(float(np.mean(means)), 3), peak, changed, len(reference))


def measure_drift(fp32: Path, fp16: Path, image, prompt: str, steps: int, anchors: int, seeds: tuple[int, ...],
                  graphs: tuple[str, ...], on_row=None) -> list[DriftRow]:
    """All fp16, each graph alone in fp16, and all but each graph in fp16."""
    half = read_manifest(fp16)
    swappable = tuple(g for g in graphs if half.graphs[g].precision is Precision.FP16)
    reference = _edits(fp32, image, prompt, steps, anchors, seeds)
    plans = [swappable, *((g,) for g in swappable), *(tuple(x for x in swappable if x != g) for g in swappable)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lredit-drift-") as scratch:
        for i, plan in enumerate(plans):
            bundle = hybrid_bundle(fp32, fp16, Path(scratch) / f"h{i}", plan)
            rows.append(compare(reference, _edits(bundle, image, prompt, steps, anchors, seeds), plan))
            shutil.rmtree(bundle)
            if on_row:
                on_row(rows[-1], swappable)
    return rows


def describe(row: DriftRow, swappable: tuple[str, ...]) -> str:
    if set(row.fp16_graphs) == set(swappable):
        what = "all fp16"
    elif len(row.fp16_graphs) == 1:
        what = f"only {row.fp16_graphs[0]} fp16"
    else:
        what = f"all fp16 but {', '.join(sorted(set(swappable) - set(row.fp16_graphs)))}"
    return f"| {what} | {row.mean_levels:.2f} | {row.max_levels} | {row.chosen_changed}/{row.edits} |"


def main(argv=None) -> int:
    from PIL import Image

    from lredit.engine.ops.images import load_image

    from .backends import bench_image

    p = argparse.ArgumentParser(prog="python -m lredit.bench.precision_drift", description=__doc__.splitlines()[0])
    p.add_argument("--fp32", type=Path, required=True)
    p.add_argument("--fp16", type=Path, required=True)
    p.add_argument("--image", type=Path)
    p.add_argument("--prompt", default="a bowl of strawberries")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--anchors", type=int, default=9)
    p.add_argument("--seeds", default="0,3,11")
    p.add_argument("--graphs", default=",".join(PIPELINE_GRAPHS))
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    image = load_image(args.image) if args.image else Image.fromarray(bench_image())
    seeds = tuple(int(s) for s in args.seeds.split(","))
    print("| fp16 graphs | mean (levels) | max (levels) | chosen changed |\n|---|---|---|---|", flush=True)
    rows = measure_drift(args.fp32, args.fp16, image, args.prompt, args.steps, args.anchors, seeds,
                         tuple(args.graphs.split(",")), on_row=lambda r, s: print(describe(r, s), flush=True))
    if args.json:
        write_json_atomic(args.json, {"argv": sys.argv[1:], "rows": [asdict(r) for r in rows]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
