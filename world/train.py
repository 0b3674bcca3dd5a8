"""Train every world model and write the folder layout `--models DIR` loads.

    python -m lredit.world.train --out runs/world        (or: lr-train-world --out runs/world)

Each model trains in its own resumable run (checkpoints under OUT/checkpoints, every 50 steps), so a
stopped command picks up where it was; `--only` picks models (several processes may train
different ones at once). Finished parts are written to OUT/models: dino/, clip/, sd/ (text_encoder,
unet, vae, scheduler, tokenizer, and unet_t2i: the 4-channel text-to-image UNet of the sd-blend
editor, started from the inpainting one, which `--models shapes-blend` loads), judge/, geometry.json; OUT/metrics.json collects each model's
figures and wall time. `--ship DIR` then writes them fp16 to DIR with their sha256.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lredit.export.models import SD15_SCHEDULER
from lredit.tokenizer import ClipTokenizer

from . import judge as judge_mod
from . import train_clip, train_dino, train_unet, train_vae
from .cases import Split
from .data import ScenePool, sd_batch
from .training import RunSpec, train

log = logging.getLogger(__name__)

MODELS = ("judge", "dino", "clip", "vae", "vae_decoder", "unet", "unet_t2i")
GEOMETRY = {"working_size": 128, "dino_size": 256, "steps": 20, "paste_back": True, "final_pick": "objective",
            "prune_fractions": [0.1, 0.2], "prune_decode": "crop"}
"""The world's edit settings: 128 px scenes (16 x 16 latents); DINO patch 8 at the engine's default
256 (32 x 32 cells, as the paper's ViT-B/8); paste-back, the pick by the objective and search's
pruning at 0.1 and 0.2 of the schedule, chosen on the tuning split (bench/RESULTS.md, "World:
decisions" and "World, round two"); pruning decodes latent windows, measured held-out
("Decoding only what is kept")."""
RUNS = {
    "judge": RunSpec("judge", steps=6000, lr=2e-3),
    "dino": RunSpec("dino", steps=600, lr=1e-3),
    "clip": RunSpec("clip", steps=1000, lr=1e-3, weight_decay=0.05),
    "vae": RunSpec("vae", steps=2500, lr=1e-3),
    "vae_decoder": RunSpec("vae_decoder", steps=1500, lr=5e-4),
    "unet": RunSpec("unet", steps=3000, lr=5e-4),
    "unet_t2i": RunSpec("unet_t2i", steps=3000, lr=3e-4),
}


@dataclass(frozen=True)
class WorldPlan:
    out: Path
    """Work folder: checkpoints/, models/, metrics.json."""
    scenes: int = 3000
    """Training scenes in the pool (the UNet encodes the first `unet_scenes` of them)."""
    unet_scenes: int = 1500
    heldout_scenes: int = 200
    """Held-out scenes the judge's accuracy, the VAE's PSNR and DINO's hit rate are measured on."""
    step_scale: float = 1.0
    """Multiplies every run's step count (tests train a few steps)."""
    seed: int = 0
    threads: int = 2
    progress: bool = True
    init: Path | None = None
    """A models folder (e.g. world/weights) the UNet starts from instead of random weights, with
    that folder's frozen VAE and text encoder: a continuation run, with a fresh optimiser and its
    own warm-up and cosine schedule."""
    steps: tuple[tuple[str, int], ...] = ()
    """(model, steps) pairs that replace RUNS' step counts (before `step_scale`)."""

    @property
    def models(self) -> Path:
        return self.out / "models"

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    def run(self, name: str) -> RunSpec:
        spec = RUNS[name]
        steps = max(1, round(dict(self.steps).get(name, spec.steps) * self.step_scale))
        return replace(spec, steps=steps, seed=self.seed, warmup=min(spec.warmup, steps),
                       checkpoint_every=min(spec.checkpoint_every, steps))

    def pool(self, count: int | None = None, split: Split = Split.TRAIN) -> ScenePool:
        return ScenePool(count or self.scenes, GEOMETRY["working_size"], split)


def record(plan: WorldPlan, name: str, figures: dict) -> None:
    """Merge one model's figures into OUT/metrics.json (atomic)."""
    path = plan.out / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    metrics[name] = figures
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, path)


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit_judge(plan: WorldPlan) -> dict:
    model = judge_mod.Judge()
    result = train(plan.run("judge"), model, judge_mod.JudgeObjective(plan.pool(), model), plan.checkpoints, progress=plan.progress)
    heldout = judge_mod.accuracy(model, list(plan.pool(plan.heldout_scenes, Split.HELDOUT).scenes))
    judge_mod.save_judge(model, plan.models / "judge", heldout)
    return {**result, "params": params(model), "heldout": heldout}


def fit_dino(plan: WorldPlan) -> dict:
    size = GEOMETRY["dino_size"]
    model = train_dino.build_dino(size)
    model.set_attn_implementation("sdpa")  # training reads the [CLS] row itself (cls_attention_row)
    result = train(plan.run("dino"), model, train_dino.DinoObjective(plan.pool(), model, size), plan.checkpoints, progress=plan.progress)
    model.set_attn_implementation("eager")  # the engine's saliency reads eager attention maps
    hits = train_dino.hit_rate(model, list(plan.pool(plan.heldout_scenes, Split.HELDOUT).scenes), size)
    model.save_pretrained(plan.models / "dino")
    return {**result, "params": params(model), "heldout_top_cell_in_object": hits}


def fit_clip(plan: WorldPlan) -> dict:
    tokenizer = ClipTokenizer.default()
    model = train_clip.build_clip()
    objective = train_clip.ClipObjective(plan.pool(), model, tokenizer)
    result = train(plan.run("clip"), model, objective, plan.checkpoints, progress=plan.progress)
    held = plan.pool(plan.heldout_scenes, Split.HELDOUT)
    binding = train_clip.clip_accuracy(model, tokenizer, held, np.random.default_rng(plan.seed))
    model.save_pretrained(plan.models / "clip")
    tokenizer.save(plan.models / "clip")
    text = train_clip.text_encoder_from(model)
    text.save_pretrained(plan.models / "sd" / "text_encoder")
    tokenizer.save(plan.models / "sd" / "tokenizer")
    return {**result, "params": params(model), "text_encoder_params": params(text), "heldout_colour_binding": binding}


def fit_vae(plan: WorldPlan) -> dict:
    model = train_vae.build_vae(GEOMETRY["working_size"])
    result = train(plan.run("vae"), model, train_vae.VaeObjective(plan.pool(), model), plan.checkpoints, progress=plan.progress)
    held = plan.pool(plan.heldout_scenes, Split.HELDOUT).images
    model.register_to_config(scaling_factor=round(1.0 / train_vae.latent_std(model, plan.pool(256).images), 5))
    psnr = train_vae.psnr(model, held)
    model.save_pretrained(plan.models / "sd" / "vae")
    return {**result, "params": params(model), "heldout_psnr_db": round(psnr, 2), "scaling_factor": model.config.scaling_factor}


def fit_vae_decoder(plan: WorldPlan) -> dict:
    """The VAE's decoder fine-tuned on whole scenes, the encoder (and so the UNet's latent space)
    frozen: the first VAE's round trip kept too few shapes for the judge to read (32% of held-out
    objects against 95% of the originals)."""
    from diffusers import AutoencoderKL

    source = plan.models / "sd" / "vae"
    if not (source / "config.json").is_file() and plan.init is not None:
        source = Path(plan.init) / "sd" / "vae"
    model = AutoencoderKL.from_pretrained(source, torch_dtype=torch.float32)
    held = plan.pool(plan.heldout_scenes, Split.HELDOUT)
    judge_dir = plan.models / "judge" if (plan.models / "judge").is_dir() or plan.init is None else Path(plan.init) / "judge"
    before = train_vae.judged_round_trip(model, held, judge_dir)
    pool = plan.pool()
    means, stds = train_vae.encode_frozen(model, pool.images)
    objective = train_vae.DecoderObjective(means, stds, sd_batch(pool.images), train_vae.scene_weights(pool.scenes),
                                           train_vae.freeze_encoder(model))
    result = train(plan.run("vae_decoder"), model, objective, plan.checkpoints, progress=plan.progress)
    model.requires_grad_(True)
    after = train_vae.judged_round_trip(model, held, judge_dir)
    psnr = train_vae.psnr(model, held.images)
    model.save_pretrained(plan.models / "sd" / "vae")
    return {**result, "heldout_psnr_db": round(psnr, 2), "judge_reads_round_trip_before": before,
            "judge_reads_round_trip_after": after, "started_from": str(source)}


def frozen_sd(plan: WorldPlan):
    """(this run's sd folder, the folder of the frozen parts, VAE, text encoder): the VAE and text
    encoder a UNet is trained against are the ones it will run with, --init's where given."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    sd = plan.models / "sd"
    frozen = Path(plan.init) / "sd" if plan.init is not None else sd
    vae = AutoencoderKL.from_pretrained(frozen / "vae", torch_dtype=torch.float32).eval()
    encoder = CLIPTextModel.from_pretrained(frozen / "text_encoder", torch_dtype=torch.float32).eval()
    return sd, frozen, vae, encoder


def fit_unet(plan: WorldPlan) -> dict:
    sd, _, vae, encoder = frozen_sd(plan)
    plan.checkpoints.mkdir(parents=True, exist_ok=True)
    cache = plan.checkpoints / "unet_data.pt"
    if cache.is_file():
        data = train_unet.load_pool(cache)
    else:
        data = train_unet.encode_pool(plan.pool(plan.unet_scenes), vae, np.random.default_rng([plan.seed, 5]),
                                      progress=plan.progress)
        train_unet.save_pool(data, cache)
    text = train_unet.TextCache.build(encoder, ClipTokenizer.default(), set(data.captions))
    model = train_unet.build_unet(GEOMETRY["working_size"] // 8, encoder.config.hidden_size)
    if plan.init is not None:
        from diffusers import UNet2DConditionModel

        start = UNet2DConditionModel.from_pretrained(Path(plan.init) / "sd" / "unet", torch_dtype=torch.float32)
        model.load_state_dict(start.state_dict())  # same architecture, or load_state_dict says which keys differ
    objective = train_unet.UnetObjective(data, text, model, train_unet.training_scheduler(SD15_SCHEDULER))
    result = train(plan.run("unet"), model, objective, plan.checkpoints, progress=plan.progress)
    model.save_pretrained(sd / "unet")
    (sd / "scheduler").mkdir(parents=True, exist_ok=True)
    (sd / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER, indent=2))
    (plan.models / "geometry.json").write_text(json.dumps(GEOMETRY, indent=2))
    started = {"started_from": str(plan.init)} if plan.init is not None else {}
    return {**result, "params": params(model), "pairs": len(data.captions), **started}


def fit_unet_t2i(plan: WorldPlan) -> dict:
    """The text-to-image UNet, started from the inpainting UNet (this run's, else --init's)."""
    from diffusers import UNet2DConditionModel

    sd, frozen, vae, encoder = frozen_sd(plan)
    start = sd / "unet" if (sd / "unet" / "config.json").is_file() else frozen / "unet"
    inpainting = UNet2DConditionModel.from_pretrained(start, torch_dtype=torch.float32)
    plan.checkpoints.mkdir(parents=True, exist_ok=True)
    cache = plan.checkpoints / "t2i_data.pt"
    if cache.is_file():
        state = torch.load(cache, map_location="cpu", weights_only=False)
        data = train_unet.ScenePairs(state["latents"], tuple(tuple(c) for c in state["captions"]))
    else:
        data = train_unet.encode_scenes(plan.pool(plan.unet_scenes), vae, progress=plan.progress)
        torch.save({"latents": data.latents, "captions": [list(c) for c in data.captions]}, cache.with_suffix(".tmp"))
        cache.with_suffix(".tmp").replace(cache)
    text = train_unet.TextCache.build(encoder, ClipTokenizer.default(), {c for group in data.captions for c in group})
    model = train_unet.text_to_image_unet(inpainting)
    objective = train_unet.UnetObjective(data, text, model, train_unet.training_scheduler(SD15_SCHEDULER))
    result = train(plan.run("unet_t2i"), model, objective, plan.checkpoints, progress=plan.progress)
    model.save_pretrained(sd / "unet_t2i")
    return {**result, "params": params(model), "scenes": len(data.captions), "started_from": str(start)}


TRAINERS = {"judge": fit_judge, "dino": fit_dino, "clip": fit_clip, "vae": fit_vae, "vae_decoder": fit_vae_decoder,
            "unet": fit_unet, "unet_t2i": fit_unet_t2i}


def train_world(plan: WorldPlan, only: tuple[str, ...] = MODELS) -> None:
    torch.set_num_threads(plan.threads)
    for name in only:
        log.info("training %s", name)
        record(plan, name, TRAINERS[name](plan))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lr-train-world", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/world"), help="work folder (checkpoints, models, metrics)")
    parser.add_argument("--only", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 trains faster on a busy 2-core machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", action="append", default=[], metavar="MODEL=N",
                        help="train MODEL for N steps instead of its default (repeatable)")
    parser.add_argument("--unet-scenes", type=int, default=WorldPlan.unet_scenes,
                        help=f"training scenes the UNet's pairs come from (at most --scenes, {WorldPlan.scenes})")
    parser.add_argument("--init", type=Path, default=None,
                        help="start the UNet from this models folder (e.g. world/weights): a continuation run")
    parser.add_argument("--ship", type=Path, default=None, help="after training, write the models fp16 to this folder")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    only = tuple(n for n in args.only.split(",") if n)
    unknown = [n for n in only if n not in MODELS]
    if unknown:
        parser.error(f"--only names {unknown}; the models are {MODELS}")
    steps = []
    for item in args.steps:
        name, _, count = item.partition("=")
        if name not in MODELS or not count.isdigit() or int(count) < 1:
            parser.error(f"--steps {item!r}: expected MODEL=N with MODEL one of {MODELS} and N a positive integer")
        steps.append((name, int(count)))
    if not 1 <= args.unet_scenes <= WorldPlan.scenes:
        parser.error(f"--unet-scenes {args.unet_scenes}: expected 1..{WorldPlan.scenes}")
    if args.init is not None and not (args.init / "sd" / "unet" / "config.json").is_file():
        parser.error(f"--init {args.init}: no sd/unet/config.json there (give a models folder such as world/weights)")
    plan = WorldPlan(args.out, seed=args.seed, threads=args.threads, progress=not args.no_progress,
                     init=args.init, steps=tuple(steps), unet_scenes=args.unet_scenes)
    train_world(plan, only)
    if args.ship:
        from .ship import ship

        metrics = json.loads((plan.out / "metrics.json").read_text())
        ship(plan.models, args.ship, command="lr-train-world " + " ".join(argv if argv is not None else sys.argv[1:]),
             metrics=metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
