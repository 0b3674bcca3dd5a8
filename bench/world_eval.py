"""The method's region choices, graded in the shapes world (issue #19, part 4).

    python -m lredit.bench.world_eval --cases 50 --json world.json --markdown world.md --grid world.png

Each held-out case (lredit.world.cases) is edited once per region mode with the trained world
models (`--models shapes`, the torch reference, at the geometry the models carry), then graded
against the case's truth with the independent judge (lredit.world.judge, a model the objective
never sees): localisation (chosen box IoU >= 0.5 with the source object's box), success (the
judge reads the target inside the chosen box), preservation (the other objects still read as
they were; PSNR outside the box), agreement of chosen sizes between modes, and cost (UNet rows,
wall time). Modes:

- untrained-rgn: one pass, the seeded RGN (one size for every anchor, as the code ships);
- random-size: one pass, each anchor's size drawn uniformly (the paper's DINO-anchor-random-size
  baseline: the RGN's last layer zeroed, so its logits tie, and its seeded Gumbel draw picks);
- search / search-noprune: the engine's default (pruned) and the exact per-image optimum;
- learn: the RGN learned on this image from every pair's loss;
- trained-rgn: one pass with an RGN checkpoint (`--rgn-checkpoint`, e.g. from lr-train-rgn on
  the training split);
- authors: `--compat authors` (the authors' code, defects and all).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from lredit.atomic import write_bytes_atomic, write_json_atomic
from lredit.config import ANCHOR_SOURCES, EDITORS, PRUNE_DECODES, EditConfig, RegionMode
from lredit.engine.frontends.outputs import overlay
from lredit.engine.runtimes.reference.torch_backend import load_reference, models_settings
from lredit.engine.runtimes.rgn_runtime import with_rgn, with_rgn_checkpoint
from lredit.export.models import ModelSources

from .record import device_info
from .world_grading import Grade, exclusive, grade, size_agreement, summarise

MODES = ("untrained-rgn", "random-size", "search", "search-noprune", "learn", "trained-rgn", "authors")
GRID_CASES = 8


@dataclass(frozen=True)
class ModeRun:
    """How one mode edits: the pipeline to use and the per-edit overrides."""

    pipeline: object
    overrides: dict


def judge_reader(judge_dir: Path) -> Callable:
    """The independent judge as world_grading's Reader: (image, box) -> (shape, colour)."""
    from lredit.world.judge import load_judge, read_box

    judge = load_judge(judge_dir)

    def read(image, box):
        reading = read_box(judge, image, box)
        return reading.shape, reading.colour

    return read


def write_study(record: dict, text: str, json_path: Path | None, markdown_path: Path | None) -> None:
    """A study's JSON record and markdown table, each written atomically; the table to stdout."""
    if json_path:
        write_json_atomic(json_path, record)
    if markdown_path:
        write_bytes_atomic(markdown_path, text.encode())
    print(text)


def world_config(models: str, **overrides) -> EditConfig:
    """The engine's config at the geometry the models folder carries (geometry.json)."""
    return EditConfig(**{**models_settings(models), **overrides}).validated()


def int_list(text: str) -> tuple[int, ...]:
    """'3,4,5' -> (3, 4, 5): a list option's value."""
    return tuple(int(v) for v in text.split(","))


def uniform_sizes_rgn(params):
    """The RGN with its last linear layer zeroed: every size gets the same logit, so the Gumbel
    draw (rgn_sampling='gumbel', seeded by the edit's seed) picks a size uniformly at random."""
    head = dict(params.head)
    head["7.weight"] = np.zeros_like(head["7.weight"])
    head["7.bias"] = np.zeros_like(head["7.bias"])
    return params.with_head(head)


def mode_runs(pipeline, modes: tuple[str, ...], rgn_checkpoint: Path | None) -> dict[str, ModeRun]:
    cfg = pipeline.config
    authors = EditConfig.preset("authors")
    geometry = ("working_size", "dino_size", "steps", "anchors", "half_sizes", "seed")
    authors_overrides = {f.name: getattr(authors, f.name) for f in fields(EditConfig)
                         if f.name not in geometry and getattr(authors, f.name) != getattr(cfg, f.name)}
    runs = {
        "untrained-rgn": lambda: ModeRun(pipeline, {"regions": RegionMode.RGN}),
        "random-size": lambda: ModeRun(with_rgn(pipeline, uniform_sizes_rgn(pipeline.assets.rgn)),
                                       {"regions": RegionMode.RGN, "rgn_sampling": "gumbel"}),
        "search": lambda: ModeRun(pipeline, {"regions": RegionMode.SEARCH, "prune": True}),
        "search-noprune": lambda: ModeRun(pipeline, {"regions": RegionMode.SEARCH, "prune": False}),
        "learn": lambda: ModeRun(pipeline, {"regions": RegionMode.LEARN}),
        "trained-rgn": lambda: ModeRun(with_rgn_checkpoint(pipeline, rgn_checkpoint), {"regions": RegionMode.RGN}),
        "authors": lambda: ModeRun(pipeline, {**authors_overrides, "regions": RegionMode.RGN}),
    }
    if "trained-rgn" in modes and rgn_checkpoint is None:
        raise SystemExit("world_eval: mode trained-rgn needs --rgn-checkpoint (an RGN from lr-train-rgn)")
    return {name: runs[name]() for name in modes}


def train_on_cases(pipeline, cases, out: Path, epochs: int = 5, resume: bool = False) -> Path:
    """lr-train-rgn's training (engine.training: every (anchor, size) pair's loss scored once,
    Adam on the exact expected loss) over training-split cases; writes the checkpoint to `out`."""
    from lredit.engine.training.pair_losses import PairLosses
    from lredit.engine.training.rgn_training import TrainConfig, TrainExample, train_rgn

    by_name = {f"case{c.index}": c for c in cases}
    examples = [TrainExample(name, Path(name), c.prompt, c.source_caption) for name, c in by_name.items()]

    def problem(example):
        scorer = PairLosses(pipeline, by_name[example.name].scene().pil(), example.prompt, example.source_caption)
        return scorer.pooled, scorer

    train_rgn(examples, pipeline.assets.rgn, problem, out, TrainConfig(epochs=epochs), resume=resume)
    return out


def edit_case(run: ModeRun, case, read: Callable, seed: int) -> dict:
    scene = case.scene()
    start = time.perf_counter()
    result = run.pipeline.edit(scene.pil(), case.prompt, case.source_caption, seed=seed, **run.overrides)
    seconds = time.perf_counter() - start
    image = np.asarray(result.image)
    box = exclusive(result.boxes_px[result.chosen])
    others = [o for i, o in enumerate(scene.objects) if i != case.source_index]
    g: Grade = grade(image, np.asarray(result.source), box, case, others, read)
    return {
        "case": case.index,
        "prompt": case.prompt,
        "source_caption": case.source_caption,
        "truth_box": list(case.region),
        "chosen_box": list(box),
        "chosen_sizes": [int(s) for s in result.size_index],
        "unet_rows": int(result.regions.unet_rows) if result.regions else None,
        "seconds": seconds,
        **g.to_dict(),
        "_result": result,
    }


def evaluate(pipeline, cases, modes: tuple[str, ...], read: Callable, rgn_checkpoint: Path | None = None,
             on_edit: Callable[[str, int], None] | None = None) -> dict:
    """Every case through every mode; per-mode rows and summaries, and agreements."""
    runs = mode_runs(pipeline, modes, rgn_checkpoint)
    rows: dict[str, list[dict]] = {name: [] for name in runs}
    for case in cases:
        for name, run in runs.items():
            rows[name].append(edit_case(run, case, read, seed=case.index))
            if on_edit:
                on_edit(name, case.index)
    summary = {}
    for name, mode_rows in rows.items():
        grades = [Grade(**{f.name: r[f.name] for f in fields(Grade)}) for r in mode_rows]
        summary[name] = {
            **summarise(grades),
            "unet_rows": float(np.mean([r["unet_rows"] for r in mode_rows])) if mode_rows[0]["unet_rows"] is not None else None,
            "seconds_p50": float(np.median([r["seconds"] for r in mode_rows])),
        }
    sizes = {name: [np.asarray(r["chosen_sizes"]) for r in mode_rows] for name, mode_rows in rows.items()}
    agreement = {f"{a} vs {b}": size_agreement(sizes[a], sizes[b])
                 for a, b in (("search", "search-noprune"), ("trained-rgn", "search-noprune"), ("learn", "search-noprune"),
                              ("trained-rgn", "search"), ("untrained-rgn", "search"))
                 if a in sizes and b in sizes}
    return {"summary": summary, "agreement": agreement, "rows": rows}


def markdown(record: dict) -> str:
    lines = [
        f"World evaluation: {record['cases']} {record['split']} cases, models `{record['models']}`, "
        f"{record['config']['working_size']} px, {record['config']['steps']} steps, K={record['config']['anchors']}, "
        f"anchors from {record['config'].get('anchor_source', 'dino')}, editor {record['config'].get('editor', 'auto')}, "
        f"pruning at {record['config'].get('prune_fractions')} keeping {record['config'].get('prune_keep')}, "
        f"half-sizes {record['config'].get('half_sizes')}, pruning decodes {record['config'].get('prune_decode', 'full')}, "
        f"{record['device']['name']}",
        "",
        "| mode | localised (IoU >= 0.5) | success (judge) | mean IoU | others kept | PSNR outside (dB, p50) | UNet rows | s/edit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in record["summary"].items():
        kept = "-" if s["others_kept"] is None else f"{s['others_kept']:.0%}"
        psnr = "-" if s["psnr_outside_db"] is None else f"{s['psnr_outside_db']:.1f}"
        rows = "-" if s["unet_rows"] is None else f"{s['unet_rows']:.0f}"
        lines.append(f"| {name} | {s['localised']:.0%} | {s['success']:.0%} | {s['mean_iou']:.2f} | {kept} | {psnr} | "
                     f"{rows} | {s['seconds_p50']:.1f} |")
    if record["agreement"]:
        lines += ["", "| chosen size per anchor | agreement |", "| --- | --- |"]
        lines += [f"| {k} | {v:.1%} |" for k, v in record["agreement"].items()]
    return "\n".join(lines) + "\n"


def picture_grid(rows: list[dict], count: int = GRID_CASES) -> Image.Image:
    """Input, overlay and result of the first `count` cases, one row each."""
    picked = rows[:count]
    side = picked[0]["_result"].source.size[0]
    grid = Image.new("RGB", (3 * side + 8, len(picked) * (side + 14)), "white")
    draw = ImageDraw.Draw(grid)
    for i, row in enumerate(picked):
        result, y = row["_result"], i * (side + 14)
        for j, tile in enumerate((result.source, overlay(result), result.image)):
            grid.paste(tile.convert("RGB"), (j * (side + 4), y + 12))
        verdict = ("ok" if row["success"] else "miss") + f" IoU {row['iou']:.2f}"
        draw.text((2, y), f"{row['source_caption']} -> {row['prompt']}: {verdict}", fill=(0, 0, 0))
    return grid


def main(argv: list[str] | None = None) -> int:
    from lredit.world.cases import Split
    from lredit.world.cases import cases as world_cases
    p = argparse.ArgumentParser(prog="python -m lredit.bench.world_eval", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="shapes", help="a models folder with the world's weights, or the shapes preset")
    p.add_argument("--judge", type=Path, default=None, help="judge folder (default: <models>/judge)")
    p.add_argument("--split", default="heldout", choices=[s.value for s in Split if s is not Split.TRAIN])
    p.add_argument("--cases", type=int, default=50)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--modes", default=",".join(m for m in MODES if m != "trained-rgn"))
    p.add_argument("--rgn-checkpoint", type=Path, default=None, help="the RGN of mode trained-rgn")
    p.add_argument("--train-rgn-cases", type=int, default=0,
                   help="first train the RGN of mode trained-rgn on this many training-split cases (saved to --rgn-checkpoint)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--anchors", type=int, default=None)
    p.add_argument("--anchor-source", choices=ANCHOR_SOURCES, default=None, help="where every mode's anchors come from")
    p.add_argument("--editor", choices=EDITORS, default=None, help="every mode's base editor (docs/editors.md)")
    p.add_argument("--prune-fractions", type=lambda t: tuple(float(v) for v in t.split(",")), default=None,
                   help="search's pruning schedule, e.g. 0.1,0.2 (default: the engine's)")
    p.add_argument("--prune-keep", type=float, default=None, help="search's keep share per phase (default: the engine's)")
    p.add_argument("--prune-decode", choices=PRUNE_DECODES, default=None,
                   help="search's mid-schedule decode: full or crop (default: the models folder's)")
    p.add_argument("--half-sizes", type=int_list, default=None,
                   help="the M box half-sizes in DINO cells, e.g. 3,4,5,6,7,8 (default: the models folder's)")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--grid", type=Path)
    args = p.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"unknown modes {unknown}; expected some of {MODES}")
    given = (("steps", args.steps), ("anchors", args.anchors), ("anchor_source", args.anchor_source), ("editor", args.editor),
             ("prune_fractions", args.prune_fractions), ("prune_keep", args.prune_keep), ("half_sizes", args.half_sizes),
             ("prune_decode", args.prune_decode))
    overrides = {k: v for k, v in given if v is not None}
    cfg = world_config(args.models, **overrides)
    pipeline = load_reference(args.models, cfg)
    judge_dir = args.judge or Path(ModelSources.parse(args.models).root) / "judge"
    read = judge_reader(judge_dir)
    if args.train_rgn_cases:
        if args.rgn_checkpoint is None:
            p.error("--train-rgn-cases needs --rgn-checkpoint (where the trained RGN is written)")
        train_on_cases(pipeline, world_cases(Split.TRAIN, args.train_rgn_cases, size=cfg.working_size), args.rgn_checkpoint,
                       resume=args.rgn_checkpoint.is_file())
    todo = world_cases(Split(args.split), args.cases, size=cfg.working_size, start=args.start)
    done = evaluate(pipeline, todo, modes, read, args.rgn_checkpoint,
                    on_edit=lambda mode, i: print(f"world_eval: case {i} {mode}", file=sys.stderr, flush=True))
    record = {"models": args.models, "split": args.split, "cases": len(todo), "modes": list(modes),
              "config": cfg.to_report(), "device": device_info("cpu"), **done}
    if args.grid:
        picked = "search" if "search" in done["rows"] else modes[0]
        buf = _png(picture_grid(done["rows"][picked]))
        write_bytes_atomic(args.grid, buf)
    for rows in record["rows"].values():
        for row in rows:
            row.pop("_result")
    write_study(record, markdown(record), args.json, args.markdown)
    return 0


def _png(image: Image.Image) -> bytes:
    import io

    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


if __name__ == "__main__":
    sys.exit(main())
