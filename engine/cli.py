"""lr-edit IMAGE PROMPT: one edit, written to --out (result, candidates, overlay, report.json)."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from lredit.cli import run_cli
from lredit.config import COMPAT_PRESETS, RGN_SAMPLING, SCHEDULERS, Backend, EditConfig, ort_providers
from lredit.errors import InputError


@dataclass(frozen=True)
class RunOptions:
    """What lr-edit does around the pipeline (not part of the edit itself)."""

    image: Path
    prompt: str
    source_caption: str | None
    out: Path
    models: str
    dino: Path | None
    clip: Path | None
    sd: Path | None
    rgn: Path | None
    backend: Backend
    bundle: Path | None
    device: str
    overwrite: bool
    progress: bool
    requested: dict
    """The config fields given on the command line (a bundle's geometry must not contradict them)."""
    dump_graph_io: Path | None = None
    """Record every graph call's inputs and outputs here (engine/graph_io.py; the C++ host replays them)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr-edit", description="Mask-free text-driven image editing via learnable regions.")
    p.add_argument("image", type=Path, help="input image (any Pillow format)")
    p.add_argument("prompt", help="the edit, e.g. 'a bowl of strawberries'")
    p.add_argument("--source-caption", help="caption of the source region (recorded; used only by training losses)")
    p.add_argument("--out", type=Path, default=Path("lredit_out"), help="output folder (default: lredit_out)")
    p.add_argument("--overwrite", action="store_true", help="replace lredit outputs already in --out")
    src = p.add_argument_group("models")
    src.add_argument("--models", default="tiny", help="'tiny', 'full-random' or a folder with dino/, clip/, sd/ [rgn.pt]")
    src.add_argument("--dino", type=Path, help="DINO ViT folder (transformers layout), overrides <models>/dino")
    src.add_argument("--clip", type=Path, help="CLIP folder (transformers layout), overrides <models>/clip")
    src.add_argument("--sd", type=Path, help="SD inpainting folder (diffusers layout), overrides <models>/sd")
    src.add_argument("--rgn", type=Path, help="RGN checkpoint: safetensors or the authors' .pt (anchor_net.* head, conv.* projection)")
    run = p.add_argument_group("runtime")
    run.add_argument("--bundle", type=Path, help="an lr-export bundle (needed for --backend ort)")
    run.add_argument("--backend", choices=[b.value for b in Backend], help="default: ort with --bundle, else torch")
    run.add_argument("--device", default="cpu",
                     help="cpu or cuda: the torch device (fp16 on cuda); with --bundle, cuda puts ONNX Runtime on its CUDA provider")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument("--dump-graph-io", type=Path, metavar="DIR",
                     help="record every graph call's inputs and outputs (.npy + index.json) for the C++ host's ReplayRunner")
    e = p.add_argument_group("edit (defaults: the authors' numbers)")
    e.add_argument("--compat", choices=COMPAT_PRESETS, default="engine", help="'authors' reproduces the published code")
    e.add_argument("--anchors", type=int, help="K candidates (default 9)")
    e.add_argument("--half-sizes", type=lambda s: tuple(int(v) for v in s.split(",")), help="box half-sizes, e.g. 4,6,8")
    e.add_argument("--steps", type=int, help="denoising steps (default 50)")
    e.add_argument("--guidance", type=float, help="classifier-free guidance scale (default 7.5)")
    e.add_argument("--scheduler", choices=SCHEDULERS, help="default: the model folder's (PNDM for SD 1.x)")
    e.add_argument("--seed", type=int, help="noise seed (default 0)")
    e.add_argument("--working-size", type=int, help="inpainting resolution (default 512)")
    e.add_argument("--rgn-sampling", choices=RGN_SAMPLING)
    e.add_argument("--paste-back", action="store_true", default=None, help="keep pixels outside the box exactly")
    return p


def parse(argv=None) -> tuple[RunOptions, EditConfig]:
    args = build_parser().parse_args(argv)
    overrides = {
        name: value
        for name, value in (
            ("anchors", args.anchors),
            ("half_sizes", args.half_sizes),
            ("steps", args.steps),
            ("guidance", args.guidance),
            ("scheduler", args.scheduler),
            ("seed", args.seed),
            ("working_size", args.working_size),
            ("rgn_sampling", args.rgn_sampling),
            ("paste_back", args.paste_back),
        )
        if value is not None
    }
    config = EditConfig.preset(args.compat, **overrides)
    options = RunOptions(
        image=args.image,
        prompt=args.prompt,
        source_caption=args.source_caption,
        out=args.out,
        models=args.models,
        dino=args.dino,
        clip=args.clip,
        sd=args.sd,
        rgn=args.rgn,
        backend=Backend(args.backend) if args.backend else (Backend.ORT if args.bundle else Backend.TORCH),
        bundle=args.bundle,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        requested=overrides,
        dump_graph_io=args.dump_graph_io,
    )
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    return options, config


def run(options: RunOptions, config: EditConfig) -> Path:
    """Load models, edit, write outputs; returns the output folder."""
    from . import outputs
    from .images import load_image
    from .pipeline import validate_prompt

    outputs.prepare_output_dir(options.out, options.overwrite)
    image = load_image(options.image)  # fail on a bad image before loading any model
    validate_prompt(options.prompt)
    if options.bundle is not None:
        from lredit.manifest import read_manifest

        from .bundle_loader import bundle_config, check_bundle_geometry
        from .editor import Editor

        # Before any graph is loaded: a geometry the bundle was not exported for is an error.
        check_bundle_geometry(bundle_config(read_manifest(options.bundle), config), options.requested)
        # --device cuda puts ONNX Runtime on its CUDA provider (IO binding with CuPy).
        providers = ort_providers(options.device)
        pipeline = Editor.from_bundle(options.bundle, options.backend, providers=providers, config=config).pipeline
        if options.rgn is not None:  # the checkpoint runs on the numpy RGN, with its own projection
            from .rgn_runtime import use_rgn_checkpoint

            use_rgn_checkpoint(pipeline, options.rgn)
        model_info = {"bundle": str(options.bundle), "families": pipeline.assets.sources,
                      "random_weights": pipeline.assets.random_weights}
        config = pipeline.config
    elif options.backend is not Backend.TORCH:
        raise InputError(f"--backend {options.backend.value} runs an exported bundle: pass --bundle B (make one with lr-export --out B)")
    else:
        pipeline, model_info = _torch_pipeline(options, config)
    if pipeline.assets.random_weights:
        print(
            f"lr-edit: the '{options.models}' models have random weights: the output is a pipeline check, "
            "not a meaningful edit",
            file=sys.stderr,
        )
    if options.dump_graph_io is not None:
        from .graph_io import record_edit

        result = record_edit(pipeline, image, options.prompt, options.dump_graph_io, options.source_caption,
                             on_step=_progress(options, config))
    else:
        result = pipeline.edit(image, options.prompt, options.source_caption, on_step=_progress(options, config))
    report = outputs.build_report(result, image=str(options.image), backend=options.backend.value, models=model_info)
    outputs.write_outputs(result, options.out, report, overwrite=options.overwrite)
    for warning in result.warnings:
        print(f"lr-edit: warning: {warning}", file=sys.stderr)
    return options.out


def _torch_pipeline(options: RunOptions, config: EditConfig):
    from .reference.torch_backend import load_reference

    pipeline = load_reference(options.models, config, device=options.device, dino=options.dino, clip=options.clip,
                              sd=options.sd, rgn=options.rgn)
    dtype = str(pipeline.sessions["unet"].dtype)
    info = {"source": options.models, "families": pipeline.assets.sources, "random_weights": pipeline.assets.random_weights,
            "dtype": dtype}
    return pipeline, info


def _progress(options: RunOptions, config: EditConfig):
    if not options.progress:
        return None
    from tqdm import tqdm

    bar = tqdm(total=config.steps, desc="denoise", unit="step", file=sys.stderr)

    def on_step(done: int, total: int) -> None:
        bar.total = total  # PNDM's PLMS schedule runs steps + 1 UNet calls
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return on_step


def main(argv=None) -> int:
    def body() -> int:
        options, config = parse(argv)
        out = run(options, config)
        print(f"lr-edit: wrote {out}/result.png and report.json")
        return 0

    return run_cli("lr-edit", body, interrupted="no outputs were written")


if __name__ == "__main__":
    sys.exit(main())
