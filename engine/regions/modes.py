"""Region modes: how each anchor's box size is chosen (EditConfig.regions).

- rgn: the RGN's choice, one pass of K inpaints.
- search: every (anchor, size) pair inpainted (K x M rows); each anchor keeps the size with the
  lowest loss L (the paper's objective, engine.objective, on CLIP of the decoded pairs). The K
  winners are then ranked by S as in rgn mode: no extra inpainting pass. With pruning
  (default), successive halving: at `prune_fractions` of the schedule, x0 predicted from the
  guided noise is decoded and scored, and only the best `prune_keep` share of every anchor's
  live sizes continues. Noise is keyed by (seed, anchor, size), so a surviving pair's image
  equals the same pair in an unpruned run.
- learn: the RGN trained on this image from the pairs' rewards (regions-obj's learn core).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from lredit.config import EditConfig, RegionMode
from lredit.engine.ops import images as image_ops
from lredit.engine.ops.batching import run_in_chunks
from lredit.engine.ops.timing import StageTimer
from lredit.errors import InputError

if TYPE_CHECKING:
    from lredit.engine.core.pipeline import EditPipeline, Inpainted


@dataclass(frozen=True)
class RegionJob:
    """One edit's inputs to the region choice (built by EditPipeline.edit)."""

    pipeline: "EditPipeline"
    image: Image.Image
    pooled: np.ndarray
    """[K, M*c, l, l] the RGN's input per anchor (what `learn` trains on)."""
    boxes: np.ndarray
    """[K, M, 4] proposal boxes in feature cells."""
    grid: tuple[int, int]
    hidden: object
    """SD text states [2, T, D] (uncond, cond) or [1, T, D]."""
    prompt: str
    source_caption: str | None
    config: EditConfig
    timer: StageTimer
    on_step: Callable | None
    warnings: list

    @property
    def shape(self) -> tuple[int, int]:
        return self.boxes.shape[0], self.boxes.shape[1]


@dataclass(frozen=True)
class RegionsOutcome:
    """What report.json's `regions` holds."""

    mode: RegionMode
    chosen_size: np.ndarray
    """[K] chosen size index per anchor."""
    losses: list | None
    """[K][M]: each pair's final loss terms (dict with the terms and total), None where pruned;
    None altogether when nothing was scored (rgn mode)."""
    phases: list
    """Per phase: step reached, pairs alive, UNet rows run (and the scored totals [K][M])."""
    unet_rows: int
    searched: np.ndarray
    """[K, M] bool: pairs inpainted (at least partly)."""
    learn: list | None = None
    """Per-iteration mean loss when learning."""
    notes: list = field(default_factory=list)
    learned_rgn: object = None
    """learn: the RGN learned on this image (rgn_numpy.RgnParams), for --save-rgn; not reported."""

    def to_report(self) -> dict:
        return {
            "mode": self.mode.value,
            "chosen_size": [int(m) for m in self.chosen_size],
            "losses": self.losses,
            "phases": self.phases,
            "unet_rows": int(self.unet_rows),
            "searched": self.searched.astype(bool).tolist(),
            "learn": self.learn,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class ChosenRegions:
    """The K winners, one per anchor, ready for ranking."""

    work: np.ndarray
    images: np.ndarray
    """[K, S, S, 3] uint8."""
    boxes_px: np.ndarray
    """[K, 4] pixel boxes."""
    outcome: RegionsOutcome


Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray], object]
"""(pairs [N, 2], decoded uint8 images [N, S, S, 3], working image) -> LossTerms (`.total` [N],
`.entry(i)` a JSON-ready dict)."""


def search_unavailable(pipeline: "EditPipeline") -> str | None:
    """Why this pipeline cannot score pairs (None when it can): scoring needs the region objective
    and clip_vision's `tokens` output (bundles exported before it lack it)."""
    if pipeline.scorer_factory is not None:
        return None
    if importlib.util.find_spec("lredit.engine.ops.objective") is None:
        return "this build has no region objective (lredit.engine.ops.objective)"
    if "tokens" not in pipeline.sessions["clip_vision"].output_names:
        return "the clip_vision graph has no 'tokens' output: re-export the bundle with this lredit (lr-export)"
    return None


def resolve_mode(pipeline: "EditPipeline", cfg: EditConfig, warnings: list) -> RegionMode:
    """config.regions, or by default search without an RGN checkpoint and rgn with one (rgn also
    where search cannot run, with a warning saying why). An explicit mode that cannot run is an error."""
    mode = cfg.region_mode(pipeline.has_rgn_checkpoint)
    reason = None if mode is RegionMode.RGN else search_unavailable(pipeline)
    if reason is None:
        return mode
    if cfg.regions is not None:
        raise InputError(f"--regions {mode.value} cannot run: {reason}")
    warnings.append(f"regions: one-pass rgn with a seeded RGN, because search cannot run: {reason}")
    return RegionMode.RGN


def choose_regions(mode: RegionMode, job: RegionJob, rgn_sizes: np.ndarray) -> ChosenRegions:
    if mode is RegionMode.RGN:
        return one_pass(job, rgn_sizes)
    if mode is RegionMode.SEARCH:
        return search(job)
    return learn(job)


def one_pass(job: RegionJob, sizes: np.ndarray) -> ChosenRegions:
    """Today's edit: one row per anchor at the given size."""
    pairs = one_pass_pairs(sizes)
    inp = _inpaint(job, pairs)
    return one_pass_chosen(job.shape[1], pairs, inp.work, inp.images, inp.boxes_px, inp.phases, inp.unet_rows)


def one_pass_pairs(sizes: np.ndarray) -> np.ndarray:
    """[K, 2] (anchor, size): one row per anchor."""
    return np.stack([np.arange(len(sizes)), np.asarray(sizes, dtype=np.int64)], axis=1)


def one_pass_chosen(m: int, pairs, work, images, boxes_px, phases, unet_rows) -> ChosenRegions:
    """The rgn mode's result for `pairs` inpainted in one pass (alone, or beside other requests'
    rows in a shared loop: Editor.edit_batch)."""
    searched = np.zeros((len(pairs), m), dtype=bool)
    searched[pairs[:, 0], pairs[:, 1]] = True
    outcome = RegionsOutcome(RegionMode.RGN, pairs[:, 1], None, phases, unet_rows, searched)
    return ChosenRegions(work, images, boxes_px, outcome)


def all_pairs(k: int, m: int) -> np.ndarray:
    """[K*M, 2] (anchor, size), anchor-major."""
    return np.stack(np.divmod(np.arange(k * m), m), axis=1).astype(np.int64)


def prune_steps(total_steps: int, fractions) -> list[int]:
    """UNet-call indices at which to prune: round(f * total), kept inside 1..total-1, unique."""
    steps = {min(max(int(round(f * total_steps)), 1), total_steps - 1) for f in fractions}
    return sorted(s for s in steps if 1 <= s < total_steps)


def keep_best(pairs: np.ndarray, losses: np.ndarray, share: float) -> np.ndarray:
    """Indices (into `pairs`) of each anchor's best ceil(share x live) sizes, at least one;
    ties go to the smaller size index. Returned in the input order."""
    keep = []
    for anchor in np.unique(pairs[:, 0]):
        rows = np.nonzero(pairs[:, 0] == anchor)[0]
        order = rows[np.lexsort((pairs[rows, 1], losses[rows]))]
        keep.extend(order[: max(1, math.ceil(share * len(rows)))].tolist())
    return np.sort(np.asarray(keep, dtype=np.int64))


class Pruner:
    """Called by EditPipeline.inpaint at `steps`: scores the decoded x0 predictions of the live
    pairs and returns which continue."""

    def __init__(self, steps: list[int], pairs: np.ndarray, scorer: Scorer, share: float, shape, timer: StageTimer):
        self.steps, self.pairs, self.scorer, self.share, self.shape, self.timer = steps, pairs, scorer, share, shape, timer
        self.totals: list = []

    def __call__(self, step: int, live: np.ndarray, images: np.ndarray, work: np.ndarray) -> np.ndarray:
        with self.timer.stage("prune_score"):
            terms = self.scorer(self.pairs[live], images, work)
        total = np.asarray(terms.total, dtype=np.float64)
        self.totals.append(_table(self.shape, self.pairs[live], [float(v) for v in total]))
        return keep_best(self.pairs[live], total, self.share)


def search(job: RegionJob) -> ChosenRegions:
    """Score every (anchor, size) pair (pruned by successive halving unless config.prune is off);
    each anchor keeps its lowest-loss size."""
    scored = _score_pairs(job, prune=job.config.prune)
    chosen = scored.totals.argmin(axis=1)  # first minimum: ties go to the smaller size
    return scored.winners(RegionMode.SEARCH, chosen)


def learn(job: RegionJob) -> ChosenRegions:
    """The RGN trained on this image (regions-obj's learn core: exact expected-loss gradient,
    Adam, `learn_iterations` steps at `learn_lr`) from every pair's loss, scored once by an
    unpruned search (the exact gradient needs all M sizes); then the learned RGN's choice per
    anchor, its image taken from the pairs already inpainted."""
    from lredit.engine.ops.rgn_learning import learn_sizes

    params = job.pipeline.assets.rgn
    if params is None:
        raise InputError("--regions learn needs the RGN's weights in numpy (a bundle's rgn.safetensors, --rgn, or the torch reference's)")
    if job.shape[1] < 2:
        raise InputError(f"--regions learn needs at least 2 box sizes to choose between (got M={job.shape[1]}); "
                         "give more --half-sizes or use --regions rgn")
    scored = _score_pairs(job, prune=False)
    with job.timer.stage("learn"):
        result = learn_sizes(job.pooled, params, scored.totals, iterations=job.config.learn_iterations, lr=job.config.learn_lr)
    chosen = scored.winners(RegionMode.LEARN, result.choices)
    outcome = dataclasses.replace(chosen.outcome, learn=[float(v) for v in result.mean_loss], learned_rgn=result.params)
    return dataclasses.replace(chosen, outcome=outcome)


@dataclass(frozen=True)
class ScoredPairs:
    """Every pair's inpaint and loss (inf where pruned), from one search run."""

    inp: "Inpainted"
    totals: np.ndarray
    """[K, M] total loss, inf where pruned."""
    losses: list
    phases: list
    notes: list

    def winners(self, mode: RegionMode, chosen: np.ndarray) -> ChosenRegions:
        """The K candidates at sizes `chosen` (each must have run to the end)."""
        k, m = self.totals.shape
        row_of = {int(r): i for i, r in enumerate(self.inp.live)}
        rows = [row_of[a * m + int(s)] for a, s in enumerate(chosen)]
        searched = np.ones((k, m), dtype=bool)
        outcome = RegionsOutcome(mode, np.asarray(chosen, dtype=np.int64), self.losses, self.phases, self.inp.unet_rows,
                                 searched, notes=self.notes)
        return ChosenRegions(self.inp.work, self.inp.images[rows], self.inp.boxes_px[self.inp.live[rows]], outcome)


def _score_pairs(job: RegionJob, prune: bool) -> ScoredPairs:
    cfg, (k, m) = job.config, job.shape
    pairs = all_pairs(k, m)
    scorer = (job.pipeline.scorer_factory or ClipScorer)(job)
    pruner = None
    if prune and m > 1:
        total = len(job.pipeline.assets.make_scheduler(cfg.scheduler).set_timesteps(cfg.steps))
        pruner = Pruner(prune_steps(total, cfg.prune_fractions), pairs, scorer, cfg.prune_keep, (k, m), job.timer)
    inp = _inpaint(job, pairs, pruner)
    with job.timer.stage("score"):
        terms = scorer(pairs[inp.live], inp.images, inp.work)
    total = np.full(k * m, np.inf)
    total[inp.live] = np.asarray(terms.total, dtype=np.float64)
    losses = _table((k, m), pairs[inp.live], [terms.entry(i) for i in range(len(inp.live))])
    phases = [dict(p) for p in inp.phases]
    for phase, totals in zip(phases, pruner.totals if pruner else []):
        phase["losses"] = totals
    return ScoredPairs(inp, total.reshape(k, m), losses, phases, list(getattr(scorer, "notes", [])))


def _inpaint(job: RegionJob, pairs: np.ndarray, prune: Pruner | None = None) -> "Inpainted":
    pair_boxes = job.boxes[pairs[:, 0], pairs[:, 1]]
    return job.pipeline.inpaint(job.image, pair_boxes, job.grid, pairs, job.hidden, job.config, job.timer, job.on_step, prune)


def _table(shape, pairs: np.ndarray, values: list) -> list:
    """[K][M] nested list with `values` at `pairs`, None elsewhere."""
    table = [[None] * shape[1] for _ in range(shape[0])]
    for (a, s), v in zip(pairs.tolist(), values):
        table[a][s] = v
    return table


class ClipScorer:
    """The paper's objective L on decoded pairs: CLIP vision (embeddings and penultimate tokens)
    of each pair and of the working image, CLIP text of T and T_roi, engine.objective."""

    def __init__(self, job: RegionJob):
        from lredit.engine.ops.objective import RegionObjective, objective_texts

        self.pipeline, self.cfg = job.pipeline, job.config
        self.objective = RegionObjective()
        texts = objective_texts(job.prompt, job.source_caption, job.config.prompt_template)
        tok = job.pipeline.assets.clip_tokenizer
        embeds = [job.pipeline._run("clip_text", input_ids=tok.encode(t).ids[None])["text_embeds"][0] if t else None for t in texts]
        self.text_embed, self.roi_embed = embeds
        self.notes = [] if self.roi_embed is not None else ["no --source-caption: L_dir is left out of L (L = L_clip + L_str)"]
        self.source = None

    def _vision(self, images: np.ndarray) -> dict:
        pixels = image_ops.clip_pixels([Image.fromarray(x) for x in images], self.pipeline.assets.clip_image_size)
        run = lambda **feeds: self.pipeline._run("clip_vision", **feeds)  # noqa: E731
        return run_in_chunks(run, self.pipeline.assets.batch_limits.get("clip_vision"), pixels=pixels)

    def __call__(self, pairs: np.ndarray, images: np.ndarray, work: np.ndarray):
        if self.source is None:
            self.source = self._vision(image_ops.to_uint8(work)[None])
        out = self._vision(images)
        return self.objective.losses(
            out["image_embeds"], out["tokens"], self.source["image_embeds"][0], self.source["tokens"][0],
            self.text_embed, self.roi_embed,
        )
