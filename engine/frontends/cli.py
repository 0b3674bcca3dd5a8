"""lr-edit IMAGE PROMPT: one edit, written to --out (result, candidates, overlay, report.json)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lredit.cli import run_cli
from lredit.config import (
    ANCHOR_SOURCES,
    COMPAT_PRESETS,
    EDITORS,
    FINAL_PICKS,
    PRUNE_DECODES,
    REGION_MODES,
    RGN_SAMPLING,
    SCHEDULERS,
    Backend,
    EditConfig,
    RegionMode,
    ort_providers,
)
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
    save_rgn: Path | None = None
    """--regions learn: write the RGN learned on this image here (safetensors)."""
    verify: bool = False
    """Hash every bundle file (--verify); otherwise only files whose size+mtime stamp changed."""
    dump_graph_io: Path | None = None
    """Record every graph call's inputs and outputs here (engine/graph_io.py; the C++ host replays them)."""
    torch_switches: dict | None = None
    """--backend torch-cuda: precision, cuda_graphs, compile as given (None = the device's default)."""
    cpu_fallback: bool = False
    """--device cuda without a GPU runs on the CPU (said on stderr) instead of being refused."""
    unet: Path | None = None
    """--unet: a UNet folder replacing <sd>/unet."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are InputErrors: one line from run_cli, exit 2, like every other refusal."""

    def error(self, message: str):
        raise InputError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lr-edit", description="Mask-free text-driven image editing via learnable regions.")
    p.add_argument("image", type=Path, help="input image (any Pillow format)")
    p.add_argument("prompt", help="the edit, e.g. 'a bowl of strawberries'")
    p.add_argument("--source-caption", help="caption of the source region, e.g. 'fruit': adds L_dir to the region objective")
    p.add_argument("--out", type=Path, default=Path("lredit_out"), help="output folder (default: lredit_out)")
    p.add_argument("--overwrite", action="store_true", help="replace lredit outputs already in --out")
    src = p.add_argument_group("models")
    src.add_argument("--models", default="tiny", help="'tiny', 'full-random', 'tiny-blend', 'full-random-blend' (4-channel UNet), "
                     "'shapes' (the trained world; 'shapes-blend' with its text-to-image UNet) or a folder with dino/, clip/, sd/ [rgn.pt]")
    src.add_argument("--dino", type=Path, help="DINO ViT folder (transformers layout), overrides <models>/dino")
    src.add_argument("--clip", type=Path, help="CLIP folder (transformers layout), overrides <models>/clip")
    src.add_argument("--sd", type=Path,
                     help="SD folder (diffusers layout: an inpainting or a text-to-image checkpoint), overrides <models>/sd")
    src.add_argument("--unet", type=Path, help="a diffusers UNet folder, overrides <sd>/unet (e.g. a fine-tune)")
    src.add_argument("--rgn", type=Path, help="RGN checkpoint: safetensors or the authors' .pt (anchor_net.* head, conv.* projection)")
    run = p.add_argument_group("runtime")
    run.add_argument("--bundle", type=Path, help="an lr-export bundle (needed for --backend ort)")
    run.add_argument("--backend", choices=[b.value for b in Backend], help="default: ort with --bundle, else torch")
    run.add_argument("--device", default="cpu",
                     help="cpu or cuda: the torch device (fp16 on cuda); with --bundle, cuda puts ONNX Runtime on its CUDA provider")
    run.add_argument("--precision", choices=["fp32", "fp16"], help="torch-cuda: pixel graphs' precision (default fp16 on cuda)")
    run.add_argument("--no-cuda-graphs", action="store_true", help="torch-cuda: run the UNet eagerly (default: graph replay on cuda)")
    run.add_argument("--compile", action="store_true", help="torch-cuda: torch.compile the UNet (minutes of compiling)")
    run.add_argument("--cpu-fallback", action="store_true",
                     help="with --device cuda and no GPU visible, run on the CPU (default: refuse)")
    run.add_argument("--verify", action="store_true",
                     help="hash every bundle file against the manifest (default: only files changed since last found right)")
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
    e.add_argument("--paste-back", action=argparse.BooleanOptionalAction, default=None,
                   help="keep pixels outside the box exactly (default off; the shapes world's on)")
    e.add_argument("--editor", choices=EDITORS, help="base editor: inpaint (9-channel inpainting UNet), sd-blend (per-step "
                   "latent blending, for 4-channel text-to-image UNets); default auto: by the UNet's input channels")
    e.add_argument("--anchor-source", choices=ANCHOR_SOURCES, help="dino: DINO saliency (default); caption: salient "
                   "patches re-ordered by CLIP's match of a crop to --source-caption; both: by both ranks")
    e.add_argument("--final-pick", choices=FINAL_PICKS, help="rank: CLIP ranking of the K candidates (default); "
                   "objective: the lowest region loss L")
    e.add_argument("--anchor-spacing", type=int, help="minimum distance in cells between anchors (engine 4, authors 0)")
    r = p.add_argument_group("regions (how each anchor's box size is chosen)")
    r.add_argument("--regions", choices=REGION_MODES,
                   help="rgn: the RGN's choice, one pass; search: every (anchor, size) pair scored by the paper's loss; "
                        "learn: the RGN trained on this image (default: search without --rgn, rgn with it)")
    r.add_argument("--no-prune", action="store_true", help="search: run every pair to the end (no successive halving)")
    r.add_argument("--prune-fractions", type=_fractions, help="search: schedule fractions at which to prune (default 0.2,0.3,0.6)")
    r.add_argument("--prune-keep", type=float, help="search: share of an anchor's live sizes kept at each phase (default 0.5)")
    r.add_argument("--prune-decode", choices=PRUNE_DECODES,
                   help="search: decode the mid-schedule x0 in full (default) or only a latent crop around each box")
    r.add_argument("--save-rgn", type=Path, help="--regions learn: write the learned RGN here (safetensors, authors' key names)")
    r.add_argument("--max-unet-batch", type=int, help="cap on UNet rows per call; larger batches run in chunks (default: the bundle's)")
    return p


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of fractions, e.g. 0.3,0.6") from None


def models_geometry(models: str, bundle: Path | None) -> dict:
    """The settings a models folder carries (geometry.json; the `shapes` world: 128 px, 20 steps,
    paste-back, the pick by the objective), under what the command line gives; with a bundle, the
    ones its manifest recorded from that folder at export (pipeline.edit_defaults)."""
    if bundle is not None:
        from lredit.errors import LreditError
        from lredit.manifest import read_manifest

        try:
            return dict(read_manifest(bundle, require_complete=False).pipeline.edit_defaults)
        except LreditError:
            return {}  # opening the bundle names the problem
    from lredit.engine.runtimes.reference.torch_backend import models_settings

    return models_settings(models)


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
            ("editor", args.editor),
            ("final_pick", args.final_pick),
            ("anchor_source", args.anchor_source),
            ("anchor_spacing", args.anchor_spacing),
            ("regions", args.regions),
            ("prune", False if args.no_prune else None),
            ("prune_fractions", args.prune_fractions),
            ("prune_keep", args.prune_keep),
            ("prune_decode", args.prune_decode),
            ("max_unet_batch", args.max_unet_batch),
        )
        if value is not None
    }
    config = EditConfig.preset(args.compat, **{**models_geometry(args.models, args.bundle), **overrides})
    options = RunOptions(
        image=args.image,
        prompt=args.prompt,
        source_caption=args.source_caption,
        out=args.out,
        models=args.models,
        dino=args.dino,
        clip=args.clip,
        sd=args.sd,
        unet=args.unet,
        rgn=args.rgn,
        backend=Backend(args.backend) if args.backend else (Backend.ORT if args.bundle else Backend.TORCH),
        bundle=args.bundle,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        requested=overrides,
        verify=args.verify,
        save_rgn=args.save_rgn,
        dump_graph_io=args.dump_graph_io,
        torch_switches={"precision": args.precision, "cuda_graphs": False if args.no_cuda_graphs else None,
                        "compile": args.compile or None},
        cpu_fallback=args.cpu_fallback,
    )
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    return options, config


def check_run(options: RunOptions, config: EditConfig):
    """Every cross-flag and file check, before any model loads: the outputs can be written, the
    device exists, the prompts are text, the image decodes, the bundle's geometry and scheduler
    table take the config. Returns (options with the device resolved, the decoded image)."""
    from lredit.devices import resolve_device
    from lredit.engine.core.pipeline import check_text, validate_prompt
    from lredit.engine.frontends import outputs
    from lredit.engine.ops.images import load_image

    device = resolve_device(options.device, cpu_fallback=options.cpu_fallback)
    if device != options.device:
        print(f"lr-edit: --device {options.device}: no CUDA GPU is visible; running on the CPU (--cpu-fallback)", file=sys.stderr)
        options = dataclasses.replace(options, device=device)
    validate_prompt(options.prompt)
    if options.source_caption is not None:
        check_text(options.source_caption, "--source-caption")
    outputs.prepare_output_dir(options.out, options.overwrite)
    if options.dump_graph_io is not None:
        outputs.check_folder_writable(options.dump_graph_io, "--dump-graph-io")
    _check_save_rgn(options, config)
    if options.bundle is None and options.backend not in (Backend.TORCH, Backend.TORCH_CUDA):
        raise InputError(f"--backend {options.backend.value} runs an exported bundle: pass --bundle B (make one with lr-export --out B)")
    _check_steps(options, config)
    return options, load_image(options.image)


def _check_steps(options: RunOptions, config: EditConfig) -> None:
    """--steps against the scheduler's table (and, with a bundle, the geometry it was exported for)."""
    from lredit.engine.ops.schedulers import max_steps

    if options.bundle is not None:
        from lredit.engine.runtimes.bundle_loader import bundle_config, check_bundle_geometry, check_bundle_tables
        from lredit.manifest import read_manifest

        manifest = read_manifest(options.bundle)
        check_bundle_tables(manifest)
        check_bundle_geometry(bundle_config(manifest, config), options.requested)
        scheduler, table = dict(manifest.scheduler.config), len(manifest.scheduler.alphas_cumprod)
    else:
        from lredit.engine.runtimes.reference.torch_backend import scheduler_config_of

        scheduler = scheduler_config_of(options.models, options.sd)
        if scheduler is None:
            return
        table = int(scheduler.get("num_train_timesteps", 1000))
    limit = max_steps(config.scheduler, scheduler, table)
    if limit is not None and config.steps > limit:
        raise InputError(f"--steps {config.steps}: the {config.scheduler!r} scheduler's table of {table} timesteps "
                         f"takes at most {limit} steps")


def run(options: RunOptions, config: EditConfig) -> Path:
    """Load models, edit, write outputs; returns the output folder."""
    from lredit.engine.frontends import outputs

    options, image = check_run(options, config)  # fail on bad input before loading any model
    if options.bundle is not None:
        from lredit.engine.frontends.editor import Editor

        # --device cuda puts ONNX Runtime on its CUDA provider (IO binding with CuPy).
        providers = ort_providers(options.device)
        start = time.perf_counter()
        pipeline = Editor.from_bundle(options.bundle, options.backend, providers=providers, config=config,
                                      verify="full" if options.verify else True).pipeline
        print(f"lr-edit: opened {options.bundle} in {time.perf_counter() - start:.1f} s"
              + (f" ({pipeline.open_report.summary()})" if pipeline.open_report else ""), file=sys.stderr)
        if options.rgn is not None:  # the checkpoint runs on the numpy RGN, with its own projection
            from lredit.engine.runtimes.rgn_runtime import with_rgn_checkpoint

            pipeline = with_rgn_checkpoint(pipeline, options.rgn)
        model_info = outputs.bundle_model_info(options.bundle, pipeline.assets)
        config = pipeline.config
    else:
        pipeline, model_info = _torch_pipeline(options, config)
    if pipeline.assets.random_weights:
        print(
            f"lr-edit: the '{options.models}' models have random weights: the output is a pipeline check, "
            "not a meaningful edit",
            file=sys.stderr,
        )
    on_step = _progress(options, pipeline.unet_calls(config))
    if options.dump_graph_io is not None:
        from lredit.engine.frontends.graph_io import record_edit

        result = record_edit(pipeline, image, options.prompt, options.dump_graph_io, options.source_caption, on_step=on_step)
    else:
        result = pipeline.edit(image, options.prompt, options.source_caption, on_step=on_step)
    report = outputs.build_report(result, image=str(options.image), backend=options.backend.value, models=model_info)
    outputs.write_outputs(result, options.out, report, overwrite=options.overwrite)
    if options.save_rgn is not None:
        from lredit.rgn_checkpoint import save_rgn

        save_rgn(options.save_rgn, result.regions.learned_rgn, {"learned_on": str(options.image), "prompt": options.prompt})
    for warning in result.warnings:
        print(f"lr-edit: warning: {warning}", file=sys.stderr)
    return options.out


def _check_save_rgn(options: RunOptions, config: EditConfig) -> None:
    """--save-rgn needs --regions learn and a writable path: checked before any model work."""
    if options.save_rgn is None:
        return
    if config.regions is not RegionMode.LEARN:
        raise InputError("--save-rgn writes the RGN learned on this image: it needs --regions learn")
    from lredit.rgn_checkpoint import check_writable

    check_writable(options.save_rgn)


def _torch_pipeline(options: RunOptions, config: EditConfig):
    families = dict(dino=options.dino, clip=options.clip, sd=options.sd, unet=options.unet, rgn=options.rgn)
    if options.backend is Backend.TORCH_CUDA:
        from lredit.engine.runtimes.torch_cuda import TorchEngineOptions, load_torch_cuda

        engine = TorchEngineOptions.for_device(options.device, **(options.torch_switches or {}))
        pipeline = load_torch_cuda(options.models, config, engine, **families)
    else:
        from lredit.engine.runtimes.reference.torch_backend import load_reference

        pipeline = load_reference(options.models, config, device=options.device, **families)
    dtype = str(pipeline.sessions["unet"].dtype)
    info = {"source": options.models, "families": pipeline.assets.sources, "random_weights": pipeline.assets.random_weights,
            "dtype": dtype}
    return pipeline, info


def _progress(options: RunOptions, unet_calls: int):
    """A bar over the schedule's UNet calls, right from the start (PNDM: steps + 1)."""
    if not options.progress:
        return None
    from tqdm import tqdm

    bar = tqdm(total=unet_calls, desc="denoise", unit="step", file=sys.stderr)

    def on_step(done: int, total: int) -> None:
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
