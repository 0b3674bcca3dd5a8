"""The base editor graded on the truth region: how well the world's UNet paints the target when
the box is the right one (no region choice involved).

    python -m lredit.bench.world_editor --cases 50 --json editor.json --markdown editor.md
    python -m lredit.bench.world_editor --models shapes-blend --cases 50     # the sd-blend editor

For each held-out case the box is the source object's box grown to a square of `--grow` times its
longer side (the engine's boxes are squares of 32 px and more), clipped to the image; the case's
prompt is inpainted there with `--seeds` seeds, through the engine's own stages (masks, encode,
the row denoiser, decode, paste-back) at the world's geometry, and the independent judge reads
the box. Success = the judge reads the target shape and colour; `any seed` = at least one seed
did. The ceiling a region choice can reach with this editor, and the measure that compares two
UNets or two editors on the same cases.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from lredit.config import EDITORS
from lredit.engine.runtimes.reference.torch_backend import load_reference
from lredit.export.models import ModelSources
from lredit.kernels.geometry import cells_to_pixels

from .record import device_info
from .world_eval import judge_reader, world_config, write_study


def truth_cells(region, grow: float, grid: tuple[int, int], size: int) -> np.ndarray:
    """The square box around `region` (x0, y0, x1, y1 end-exclusive pixels of the working image),
    `grow` times its longer side, in the feature cells the engine's boxes are given in."""
    x0, y0, x1, y1 = region
    side = max(x1 - x0, y1 - y0) * grow
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    lo = np.clip(np.array([cx - side / 2, cy - side / 2]), 0, size - 1)
    hi = np.clip(np.array([cx + side / 2, cy + side / 2]), 0, size - 1)
    cell = (size - 1) / (grid[1] - 1)  # cells_to_pixels' scale, inverted
    return np.array([np.floor(lo[0] / cell), np.floor(lo[1] / cell), np.ceil(hi[0] / cell), np.ceil(hi[1] / cell)])


def edit_in_truth_box(pipeline, case, seeds: int, grow: float, read) -> dict:
    cfg = pipeline.config
    prep = pipeline.prepare(case.scene().pil(), case.prompt, case.source_caption, cfg)
    box_cells = truth_cells(case.region, grow, prep.grid, cfg.working_size)
    readings = []
    start = time.perf_counter()
    for seed in range(seeds):
        seeded = dataclasses.replace(prep, config=cfg.replace(seed=seed), boxes=box_cells[None, None])
        done = pipeline.inpaint(seeded, np.array([[0, 0]], dtype=np.int64))
        x0, y0, x1, y1 = (int(v) for v in cells_to_pixels(box_cells, prep.grid, cfg.working_size))
        readings.append(read(done.images[0], (x0, y0, x1 + 1, y1 + 1)))
    hits = [r == (case.target_shape, case.target_colour) for r in readings]
    return {"case": case.index, "prompt": case.prompt, "box_px": [x0, y0, x1 + 1, y1 + 1],
            "readings": [list(r) for r in readings], "success_share": float(np.mean(hits)), "any_seed": bool(any(hits)),
            "colour_share": float(np.mean([r[1] == case.target_colour for r in readings])),
            "shape_share": float(np.mean([r[0] == case.target_shape for r in readings])),
            "seconds": time.perf_counter() - start}


def markdown(record: dict) -> str:
    s = record["summary"]
    return (f"Editor on the truth box: {record['cases']} held-out cases, models `{record['models']}`, editor "
            f"{record['editor']}, box {record['grow']} x the object's longer side, {record['seeds']} seeds, "
            f"{record['config']['working_size']} px, {record['config']['steps']} steps, {record['device']['name']}\n\n"
            "| success (judge, per seed) | any seed | colour right | shape right | s/case |\n| --- | --- | --- | --- | --- |\n"
            f"| {s['success']:.0%} | {s['any_seed']:.0%} | {s['colour']:.0%} | {s['shape']:.0%} | {s['seconds_p50']:.1f} |\n")


def main(argv: list[str] | None = None) -> int:
    from lredit.world.cases import Split, cases

    p = argparse.ArgumentParser(prog="python -m lredit.bench.world_editor", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="shapes")
    p.add_argument("--cases", type=int, default=50)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--grow", type=float, default=1.3)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--editor", choices=EDITORS, default=None)
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("steps", args.steps), ("editor", args.editor)) if v is not None}
    cfg = world_config(args.models, **overrides)
    pipeline = load_reference(args.models, cfg)
    read = judge_reader(Path(ModelSources.parse(args.models).root) / "judge")
    rows = []
    for case in cases(Split.HELDOUT, args.cases, size=cfg.working_size):
        rows.append(edit_in_truth_box(pipeline, case, args.seeds, args.grow, read))
        print(f"world_editor: case {case.index}", file=sys.stderr, flush=True)
    summary = {"success": float(np.mean([r["success_share"] for r in rows])), "any_seed": float(np.mean([r["any_seed"] for r in rows])),
               "colour": float(np.mean([r["colour_share"] for r in rows])), "shape": float(np.mean([r["shape_share"] for r in rows])),
               "seconds_p50": float(np.median([r["seconds"] for r in rows]))}
    record = {"models": args.models, "cases": len(rows), "seeds": args.seeds, "grow": args.grow,
              "editor": pipeline.editor(cfg), "config": cfg.to_report(), "device": device_info("cpu"),
              "summary": summary, "rows": rows}
    write_study(record, markdown(record), args.json, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
