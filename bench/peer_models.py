"""Writes lr-bench's models as a diffusers StableDiffusionInpaintPipeline folder, so a peer in its
own venv (bench/peer_optimum.sh) inpaints with exactly the weights the engine runs.

    python -m lredit.bench.peer_models --models tiny --out DIR
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .authors import _transformers_tokenizer
from .backends import load_models
from .config import BenchConfig


def save_inpaint_pipeline(cfg: BenchConfig, out: Path) -> Path:
    from diffusers import StableDiffusionInpaintPipeline

    from lredit.export.diffusers_schedulers import diffusers_scheduler

    models = load_models(cfg, None)
    pipe = StableDiffusionInpaintPipeline(
        vae=models.vae, text_encoder=models.sd_text_encoder, tokenizer=_transformers_tokenizer(models),
        unet=models.unet, scheduler=diffusers_scheduler(models.scheduler_config, cfg.scheduler),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out, safe_serialization=True)
    # transformers 5 writes tokenizer.json only; the peer's transformers 4 reads vocab + merges.
    shutil.copyfile(models.sd_tokenizer.files[0], Path(out) / "tokenizer" / "vocab.json")
    shutil.copyfile(models.sd_tokenizer.files[1], Path(out) / "tokenizer" / "merges.txt")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lredit.bench.peer_models", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny")
    p.add_argument("--scheduler", default="model")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    save_inpaint_pipeline(BenchConfig(models=args.models, scheduler=args.scheduler), args.out)
    print(f"peer_models: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
