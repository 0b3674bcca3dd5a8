"""Method decisions on the shapes world's tuning split (issue #19, part 5).

    python -m lredit.bench.world_tune --cases 24 --json tune.json --markdown tune.md

Every (anchor, size) pair of each tuning case is inpainted once (the exhaustive search's work,
noise keyed by seed, anchor and size, so a pair's image does not depend on what else ran), and
per pair the study keeps: the objective's three terms, CLIP's ranking cosines, and the judge's
grade of the pair's box (localised, success), with the decode as it is and pasted back into the
source outside the mask. Every policy below is then replayed on those pairs without inpainting
again, so all of them are compared on the same images:

- objective weights (w_clip, w_str, w_dir): each anchor keeps its lowest-L size (search's rule);
- the final pick among the K winners: CLIP ranking (rank_alpha/beta, top-3 guard, as the engine
  ships) or the lowest L;
- paste-back on or off (the candidates the objective and the ranking see);
- K: the first k anchors (anchors are picked greedily by saliency, so K=k is a prefix of K=9).

The anchor spacing changes which anchors exist: its study (`coverage`) needs no inpainting and
counts the cases where some pair's box localises the source object at all.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lredit.config import ANCHOR_SOURCES
from lredit.engine.ops import images as image_ops
from lredit.engine.ops.ranking import rank_candidates
from lredit.engine.regions.scorer import ClipScorer
from lredit.graphs import Outputs
from lredit.kernels.geometry import cells_to_pixels

from .world_eval import int_list, judge_reader, world_config, write_study
from .world_grading import box_iou, exclusive, grade

WEIGHTS = (0.0, 0.5, 1.0, 2.0)
FINALS = ("rank", "objective")
PASTES = (False, True)
SPACINGS = (0, 2, 4, 6)


@dataclass(frozen=True)
class PairTable:
    """One case's pairs, each array [K, M] (embeds [K, M, D]) per paste variant."""

    terms: dict  # paste -> {"clip", "str", "dir"} -> [K, M]
    embeds: dict  # paste -> [K, M, D]
    source_embed: np.ndarray
    text_embed: np.ndarray
    localised: np.ndarray
    success: dict  # paste -> [K, M] bool


def pair_table(pipeline, case, read) -> PairTable:
    """Inpaint and grade every pair of one case (paste_back off: the raw decode, then pasted)."""
    cfg = replace(pipeline.config, paste_back=False)
    scene = case.scene()
    prep = pipeline.prepare(scene.pil(), case.prompt, case.source_caption, cfg)
    k, m = prep.shape
    pairs = np.argwhere(np.ones((k, m), dtype=bool))
    inp = pipeline.inpaint(prep, pairs)
    work = image_ops.to_uint8(inp.work)
    pasted = np.where(inp.masks[..., None] >= 0.5, inp.images, work[None])
    scorer = ClipScorer(pipeline.clip_models(), case.prompt, case.source_caption, cfg.prompt_template)
    source = scorer.vision(work[None])
    others = [o for i, o in enumerate(scene.objects) if i != case.source_index]
    boxes = [exclusive(b) for b in inp.boxes_px]
    localised = np.array([box_iou(b, case.region) >= 0.5 for b in boxes]).reshape(k, m)
    terms, embeds, success = {}, {}, {}
    for paste, images in zip(PASTES, (inp.images, pasted)):
        out = scorer.vision(images)
        t = scorer.objective.losses(out[Outputs.IMAGE_EMBEDS], out[Outputs.TOKENS], source[Outputs.IMAGE_EMBEDS][0],
                                    source[Outputs.TOKENS][0], scorer.text_embed, scorer.roi_embed)
        terms[paste] = {"clip": t.clip.reshape(k, m), "str": t.str.reshape(k, m), "dir": t.dir.reshape(k, m)}
        embeds[paste] = out[Outputs.IMAGE_EMBEDS].reshape(k, m, -1)
        success[paste] = np.array([grade(img, work, b, case, others, read).success
                                   for img, b in zip(images, boxes)]).reshape(k, m)
    return PairTable(terms, embeds, source[Outputs.IMAGE_EMBEDS][0], scorer.text_embed, localised, success)


def replay(table: PairTable, weights, final: str, paste: bool, anchors: int, cfg) -> tuple[bool, bool]:
    """(localised, success) of the candidate a policy picks among the first `anchors` anchors."""
    t = table.terms[paste]
    total = (weights[0] * t["clip"] + weights[1] * t["str"] + weights[2] * t["dir"])[:anchors]
    size = total.argmin(axis=1)
    ks = np.arange(anchors)
    if final == "objective":
        chosen = int(total[ks, size].argmin())
    else:
        chosen = rank_candidates(table.embeds[paste][ks, size], table.source_embed, table.text_embed, alpha=cfg.rank_alpha,
                                 beta=cfg.rank_beta, softmax=cfg.rank_softmax, top_t2i=cfg.rank_top_t2i).chosen
    return bool(table.localised[chosen, size[chosen]]), bool(table.success[paste][chosen, size[chosen]])


def policies(k_max: int):
    for w in itertools.product(WEIGHTS, repeat=3):
        if any(w):
            for final, paste, k in itertools.product(FINALS, PASTES, sorted({*range(3, k_max + 1, 2), k_max})):
                yield {"weights": list(w), "final": final, "paste_back": paste, "anchors": k}


def study(tables: list[PairTable], cfg) -> list[dict]:
    """Every policy's localised and success shares over the cases, best success first."""
    rows = []
    for pol in policies(cfg.anchors):
        got = [replay(t, pol["weights"], pol["final"], pol["paste_back"], pol["anchors"], cfg) for t in tables]
        rows.append({**pol, "localised": float(np.mean([g[0] for g in got])), "success": float(np.mean([g[1] for g in got])),
                     "both": float(np.mean([g[0] and g[1] for g in got]))})
    return sorted(rows, key=lambda r: (-r["both"], -r["success"], -r["localised"]))


def oracle(tables: list[PairTable]) -> dict:
    """Shares of cases where some pair (paste-back on) localises, succeeds, or does both."""
    return {"localised": float(np.mean([t.localised.any() for t in tables])),
            "success": float(np.mean([t.success[True].any() for t in tables])),
            "both": float(np.mean([(t.localised & t.success[True]).any() for t in tables]))}


def coverage(pipeline, cases, spacings=SPACINGS, sources=ANCHOR_SOURCES) -> dict:
    """Per anchor source and spacing: share of cases where some (anchor, size) box localises the
    source object."""
    out = {}
    for source, spacing in itertools.product(sources, spacings):
        cfg = replace(pipeline.config, anchor_spacing=spacing, anchor_source=source)
        hit = []
        for case in cases:
            prep = pipeline.prepare(case.scene().pil(), case.prompt, case.source_caption, cfg)
            boxes = cells_to_pixels(prep.boxes.reshape(-1, 4), prep.grid, cfg.working_size)
            hit.append(any(box_iou(exclusive(b), case.region) >= 0.5 for b in boxes))
        out[f"{source}, spacing {spacing}"] = float(np.mean(hit))
    return out


def markdown(record: dict, top: int = 12) -> str:
    c = record["config"]
    lines = [f"Tuning study: {record['cases']} tune cases, {c['working_size']} px, {c['steps']} steps, K<={c['anchors']}, "
             f"anchors from {c['anchor_source']}, half-sizes {c['half_sizes']}, "
             f"{record['device']}", "",
             "| weights clip/str/dir | final pick | paste-back | K | localised | success | both |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    shipped = [r for r in record["policies"] if r["weights"] == [1.0, 1.0, 1.0] and r["final"] == "rank"
               and not r["paste_back"] and r["anchors"] == c["anchors"]]
    for r in record["policies"][:top] + [dict(s, weights=["engine default:"] + s["weights"]) for s in shipped]:
        w = "/".join(str(x) for x in r["weights"])
        lines.append(f"| {w} | {r['final']} | {'on' if r['paste_back'] else 'off'} | {r['anchors']} | {r['localised']:.0%} | "
                     f"{r['success']:.0%} | {r['both']:.0%} |")
    o = record["oracle"]
    lines += ["", f"Some pair of the case (an oracle's pick, paste-back on): localises {o['localised']:.0%}, succeeds "
              f"{o['success']:.0%}, both {o['both']:.0%}."]
    lines += ["", "| anchors | cases some pair localises |", "| --- | --- |"]
    lines += [f"| {s} | {v:.0%} |" for s, v in record["coverage"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from lredit.engine.runtimes.reference.torch_backend import load_reference
    from lredit.export.models import ModelSources
    from lredit.world.cases import Split
    from lredit.world.cases import cases as world_cases

    from .record import device_info

    p = argparse.ArgumentParser(prog="python -m lredit.bench.world_tune", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="shapes")
    p.add_argument("--cases", type=int, default=24)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--anchor-source", choices=ANCHOR_SOURCES, default=None, help="the anchors the pairs are inpainted at")
    p.add_argument("--half-sizes", type=int_list, default=None, help="the M box half-sizes in DINO cells (default: the models folder's)")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    given = {"steps": args.steps, "anchor_source": args.anchor_source, "half_sizes": args.half_sizes}
    cfg = world_config(args.models, **{k: v for k, v in given.items() if v is not None})
    pipeline = load_reference(args.models, cfg)
    read = judge_reader(Path(ModelSources.parse(args.models).root) / "judge")
    todo = world_cases(Split.TUNE, args.cases, size=cfg.working_size)
    tables = []
    for case in todo:
        tables.append(pair_table(pipeline, case, read))
        print(f"world_tune: case {case.index}", file=sys.stderr, flush=True)
    record = {"models": args.models, "split": "tune", "cases": len(todo), "config": cfg.to_report(),
              "device": device_info("cpu")["name"], "coverage": coverage(pipeline, todo), "oracle": oracle(tables),
              "policies": study(tables, cfg)}
    write_study(record, markdown(record), args.json, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
