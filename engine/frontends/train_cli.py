"""lr-train-rgn IMAGES PROMPTS --save-rgn OUT.safetensors: one RGN trained across a folder of
images (see engine.rgn_training for the prompts file format), checkpointed after every epoch.

`lr-train-rgn --convert rgn.pt --save-rgn rgn.safetensors` converts an authors' checkpoint (needs
torch) into the torch-free format.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from lredit.cli import run_cli
from lredit.engine.training.rgn_training import TrainConfig
from lredit.errors import InputError, OutputError

log = logging.getLogger("lredit.train")


@dataclass(frozen=True)
class TrainOptions:
    images: Path | None
    prompts: Path | None
    save_rgn: Path
    convert: Path | None
    rgn: Path | None
    models: str
    bundle: Path | None
    resume: bool
    progress: bool
    edit: dict
    """EditConfig overrides (anchors, steps, working size, seed)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr-train-rgn", description="Train one RGN across many images with the paper's objective.")
    p.add_argument("images", type=Path, nargs="?", help="folder of training images")
    p.add_argument("prompts", type=Path, nargs="?", help="prompts file: lines 'image_name<TAB>prompt[<TAB>source caption]'")
    p.add_argument("--save-rgn", type=Path, required=True, help="checkpoint to write (safetensors), after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint at --save-rgn")
    p.add_argument("--rgn", type=Path, help="start from this RGN checkpoint instead of the bundle's/seeded one")
    p.add_argument("--convert", type=Path, help="only convert this checkpoint (e.g. the authors' .pt) to --save-rgn")
    p.add_argument("--models", default="tiny", help="'tiny', 'full-random' or a models folder (torch backend)")
    p.add_argument("--bundle", type=Path, help="an lr-export bundle: ONNX Runtime, no torch needed")
    p.add_argument("--epochs", type=int, default=5, help="passes over the images (default 5, the paper's)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 0.003, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the example order and of the noise")
    p.add_argument("--anchors", type=int, help="K anchors per image (default 9)")
    p.add_argument("--steps", type=int, help="denoising steps per inpaint (default 50)")
    p.add_argument("--working-size", type=int, help="inpainting resolution (default 512)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def parse(argv=None) -> tuple[TrainOptions, TrainConfig]:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if args.convert is None and (args.images is None or args.prompts is None):
        raise InputError("give IMAGES and PROMPTS to train (or --convert CHECKPOINT to convert one)")
    edit = {k: v for k, v in (("anchors", args.anchors), ("steps", args.steps), ("working_size", args.working_size)) if v is not None}
    options = TrainOptions(args.images, args.prompts, args.save_rgn, args.convert, args.rgn, args.models, args.bundle,
                           args.resume, not args.no_progress, {**edit, "seed": args.seed})
    return options, TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)


def run(options: TrainOptions, config: TrainConfig):
    from lredit.rgn_checkpoint import check_writable

    check_writable(options.save_rgn)  # before any model is loaded or image inpainted
    if options.convert is not None:
        return _convert(options)
    from lredit.engine.training.rgn_training import read_examples, train_rgn

    examples = read_examples(options.images, options.prompts)
    if options.save_rgn.exists() and not options.resume:
        raise OutputError(f"--save-rgn {options.save_rgn} exists: pass --resume to continue training it, or remove it")
    pipeline = _pipeline(options)
    if pipeline.assets.rgn is None:
        raise InputError(f"bundle {options.bundle} has no rgn.safetensors (exported by an older lredit): re-run lr-export")
    from lredit.engine.training.pair_losses import PairLosses

    def problem(example):
        scorer = PairLosses(pipeline, example.image, example.prompt, example.source_caption)
        return scorer.pooled, scorer

    bar = _progress(options)
    try:
        return train_rgn(examples, pipeline.assets.rgn, problem, options.save_rgn, config, resume=options.resume, on_example=bar)
    finally:
        if bar is not None:
            bar.close()


def _pipeline(options: TrainOptions):
    from lredit.config import EditConfig

    config = EditConfig().replace(**options.edit)
    if options.bundle is not None:
        from lredit.engine.frontends.editor import Editor

        pipeline = Editor.from_bundle(options.bundle, "ort", config=config).pipeline
    else:
        from lredit.engine.runtimes.reference.torch_backend import load_reference

        pipeline = load_reference(options.models, config)
    if options.rgn is not None:
        from lredit.engine.runtimes.rgn_runtime import with_rgn_checkpoint

        pipeline = with_rgn_checkpoint(pipeline, options.rgn)
    return pipeline


def _convert(options: TrainOptions):
    """Rewrite a checkpoint (e.g. the authors' .pt, which needs torch) as safetensors. It must
    hold conv.*: a head-only file runs as it is with --rgn (seeded projection), nothing to convert."""
    from lredit.rgn_checkpoint import load_rgn, read_state, save_rgn

    state, _ = read_state(options.convert)
    if "conv.weight" not in state or "conv.bias" not in state:
        raise InputError(f"{options.convert} holds only the head (no conv.*): use it as it is with --rgn (seeded projection)")
    weight = state["conv.weight"]
    loaded = load_rgn(options.convert, (weight.reshape(weight.shape[0], -1), state["conv.bias"]))
    save_rgn(options.save_rgn, loaded.params, {"converted_from": options.convert.name})
    return loaded


class _Bar:
    def __init__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=0, desc="train", unit="image", file=sys.stderr)

    def __call__(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _progress(options: TrainOptions):
    return _Bar() if options.progress else None


def main(argv=None) -> int:
    def body() -> int:
        options, config = parse(argv)
        result = run(options, config)
        if options.convert is not None:
            print(f"lr-train-rgn: wrote {options.save_rgn}")
        else:
            losses = ", ".join(f"{x:.4f}" for x in result.epoch_loss) or "none (already trained)"
            print(f"lr-train-rgn: wrote {options.save_rgn} after {result.epochs_done} epochs; mean loss per epoch: {losses}")
        return 0

    return run_cli("lr-train-rgn", body, interrupted="the last finished epoch's checkpoint is kept (--resume continues it)")


if __name__ == "__main__":
    sys.exit(main())
