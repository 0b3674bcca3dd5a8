"""How well mid-schedule losses rank the box sizes, and what pruning schedule to ship.

    python -m lredit.bench.regions_study --models tiny --pairs 20 --working-size 256 --steps 25 \\
        --json bench/results/regions_study.json
    python -m lredit.bench.regions_study --world tune --pairs 24 --json bench/results/regions_study_world_tune.json

`--world tune|heldout` takes the shapes world's edit cases (image, prompt, source caption) and
its models (`--models shapes` by default) at the geometry they carry, instead of procedural
images with fixed prompts on random models.

For each image/prompt pair, one search edit scores every (anchor, size) pair at many fractions of
the schedule without pruning anything (prune_keep = 1: a probe run), then at the end. From those
losses, per probe fraction: Spearman's rank correlation of the mid-schedule L with the final L
over the M sizes of each anchor (mean over anchors and images), and how often the mid-schedule
argmin is the final one. Pruning schedules are then replayed on the same losses (exactly what the
pruned search decides, since a surviving pair's final image equals its unpruned one), for each
keep share: the share of anchors where pruned search picks the exhaustive size, the UNet rows it
costs (against exhaustive search and against the one-pass edit's K rows a step) and the pairs
decoded and scored mid-schedule.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from lredit.config import EditConfig, RegionMode
from lredit.engine.regions.search import all_pairs, keep_best, prune_steps

PROBES = (0.1, 0.15, 0.2, 0.3, 0.5, 0.6, 0.8)
SCHEDULES = ((0.3, 0.6), (0.2, 0.5), (0.5, 0.8), (0.3,), (0.5,), (0.6,), (0.2, 0.3, 0.6), (0.3, 0.6, 0.8),
             (0.1,), (0.15,), (0.2,), (0.1, 0.2), (0.15, 0.3), (0.1, 0.15, 0.2), (0.1, 0.2, 0.3))
KEEPS = (0.5, 1 / 3, 1 / 6)
"""Keep shares replayed besides --keep: with M = 6 sizes, 1/3 keeps 2 and 1/6 keeps one per phase."""
PROMPTS = ("a bowl of strawberries", "a red car", "a cat", "a vase of flowers", "a stack of books",
           "a wooden chair", "a green apple", "a lamp", "a teapot", "a sunflower")


def study_image(i: int, size: int = 320) -> np.ndarray:
    """A procedural scene: gradient background, a few coloured discs and boxes (seeded by i)."""
    rng = np.random.default_rng([2026, i])
    y, x = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(20, 230, 3), rng.uniform(20, 230, 3)
    img = c0 * (1 - y[..., None]) + c1 * y[..., None]
    for _ in range(rng.integers(2, 5)):
        cx, cy, r = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.06, 0.2)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    for _ in range(rng.integers(1, 3)):
        x0, y0 = rng.uniform(0, 0.7, 2)
        w, h = rng.uniform(0.1, 0.3, 2)
        img[(x > x0) & (x < x0 + w) & (y > y0) & (y < y0 + h)] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two equal-length vectors (ties: ordinal ranks); nan when one is constant."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def probe_losses(pipe, image, prompt: str, cfg: EditConfig, source_caption: str | None = None) -> tuple[dict, np.ndarray, list]:
    """({fraction: [K, M] losses}, final [K, M], probe steps) from one unpruned probe edit."""
    result = pipe.edit(image, prompt, source_caption, regions=RegionMode.SEARCH, prune=True, prune_keep=1.0, prune_fractions=PROBES)
    out = result.regions
    final = np.array([[e["total"] for e in row] for row in out.losses], dtype=np.float64)
    total = out.phases[-1]["step"]
    mids = {}
    for phase in out.phases[:-1]:
        fraction = min(PROBES, key=lambda f: abs(round(f * total) - phase["step"]))
        mids[fraction] = np.array(phase["losses"], dtype=np.float64)
    return mids, final, total


def replay(schedule, mids: dict, final: np.ndarray, total: int, keep: float) -> tuple[np.ndarray, int, int]:
    """Sizes pruned search picks under `schedule` (from the probe's losses), its UNet rows per
    guidance branch, and the pairs it decodes and scores mid-schedule."""
    k, m = final.shape
    pairs, live = all_pairs(k, m), np.arange(k * m)
    steps = prune_steps(total, schedule)
    rows, last, decoded = 0, 0, 0
    for step, fraction in zip(steps, schedule):
        rows += (step - last) * len(live)
        decoded += len(live)
        losses = mids[fraction].reshape(-1)[live]
        live = live[keep_best(pairs[live], losses, keep)]
        last = step
    rows += (total - last) * len(live)
    table = np.full(k * m, np.inf)
    table[live] = final.reshape(-1)[live]
    return table.reshape(k, m).argmin(1), rows, decoded


def summarise(samples: list, keep: float) -> dict:
    per_probe = {}
    for f in PROBES:
        rhos, top1 = [], []
        for mids, final, _ in samples:
            for a in range(final.shape[0]):
                rhos.append(spearman(mids[f][a], final[a]))
                top1.append(int(np.argmin(mids[f][a]) == np.argmin(final[a])))
        per_probe[str(f)] = {"spearman_mean": float(np.nanmean(rhos)), "spearman_median": float(np.nanmedian(rhos)),
                             "argmin_agreement": float(np.mean(top1)), "anchors": len(rhos)}
    schedules = {}
    for share in sorted({keep, *KEEPS}, reverse=True):
        for schedule in SCHEDULES:
            agree, rows, full, decoded, anchors = [], [], [], [], 0
            for mids, final, total in samples:
                picked, r, d = replay(schedule, mids, final, total, share)
                agree += (picked == final.argmin(1)).tolist()
                rows.append(r)
                decoded.append(d)
                full.append(total * final.size)
                anchors += total * final.shape[0]
            key = ",".join(map(str, schedule)) + ("" if share == keep else f" keep {share:.2f}")
            schedules[key] = {
                "schedule": list(schedule), "keep": share,
                "same_size_as_exhaustive": float(np.mean(agree)), "anchors": len(agree),
                "unet_rows_vs_exhaustive": float(np.sum(rows) / np.sum(full)),
                "unet_rows_vs_one_pass": float(np.sum(rows) / anchors),
                "pairs_decoded_mid_schedule": float(np.mean(decoded)),
            }
    return {"per_probe": per_probe, "schedules": schedules}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lredit.bench.regions_study", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--working-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--anchors", type=int, default=9)
    p.add_argument("--keep", type=float, default=0.5)
    p.add_argument("--world", choices=("tune", "heldout"), default=None,
                   help="the shapes world's edit cases of this split (and --models shapes at its geometry)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    from PIL import Image

    from lredit.atomic import write_bytes_atomic
    from lredit.engine.runtimes.reference.torch_backend import load_reference, models_settings

    if args.world:
        from lredit.world.cases import Split, cases

        models = "shapes" if args.models == "tiny" else args.models
        cfg = EditConfig(**{**models_settings(models), "anchors": args.anchors}).validated()
        todo = [(c.scene().pil(), c.prompt, c.source_caption) for c in cases(Split(args.world), args.pairs, size=cfg.working_size)]
    else:
        models = args.models
        cfg = EditConfig(working_size=args.working_size, steps=args.steps, anchors=args.anchors)
        todo = [(Image.fromarray(study_image(i)), PROMPTS[i % len(PROMPTS)], None) for i in range(args.pairs)]
    pipe = load_reference(models, cfg)
    samples = []
    for i, (image, prompt, caption) in enumerate(todo):
        samples.append(probe_losses(pipe, image, prompt, cfg, caption))
        print(f"pair {i + 1}/{len(todo)} done", file=sys.stderr, flush=True)
        summary = summarise(samples, args.keep)
        doc = {"models": models, "world_split": args.world, "working_size": cfg.working_size, "steps": cfg.steps,
               "anchors": cfg.anchors, "sizes": len(cfg.half_sizes), "pairs": len(samples), "keep": args.keep, **summary,
               "raw": [{"final": final.tolist(), "probes": {str(f): v.tolist() for f, v in mids.items()}}
                       for mids, final, _ in samples]}
        if args.json:  # after every pair, so a partial study is kept
            write_bytes_atomic(args.json, (json.dumps(doc, indent=1) + "\n").encode())
    print(json.dumps(summary, indent=1))
    return 0 if all(math.isfinite(v["spearman_mean"]) for v in summary["per_probe"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
