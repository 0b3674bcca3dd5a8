"""Model sources: the four families (DINO, RGN, CLIP ranker, SD inpainting) from local folders
or from seeded random presets. Nothing here touches the network.

Presets:
- `tiny`: architecture-true small configs (ViT patch 8, CLIP ViT patch 16, 9-channel UNet,
  8x VAE), random weights, built in about a second. For tests and pipeline checks.
- `full-random`: the real architectures at real size (ViT-B/8, CLIP ViT-B/16, SD 1.5 inpainting
  UNet / VAE / text encoder) with random weights: the real compute, for latency work.
- `tiny-blend`, `full-random-blend`: the same with a 4-channel text-to-image UNet (SD 1.5's own at
  full size), for the sd-blend editor (docs/editors.md).

A local root folder holds `dino/` (transformers ViTModel, e.g. facebook/dino-vitb8), `clip/`
(transformers CLIPModel + tokenizer, e.g. openai/clip-vit-base-patch16), `sd/` (diffusers folder of
an inpainting model, or of a text-to-image one for sd-blend) and optionally `rgn.pt` (authors' checkpoint); each may be overridden.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lredit.errors import ModelSourceError
from lredit.tokenizer import ClipTokenizer

from .rgn import RegionNetwork, load_rgn_checkpoint

PRESETS = ("tiny", "full-random", "tiny-blend", "full-random-blend")
SHIPPED = {"shapes": ("lredit.world", "weights"), "shapes-blend": ("lredit.world", "weights")}
"""Trained weights shipped as package data: preset name -> (package, folder). `shapes` = the
world's models (world/, issue #19), a root folder like any other, with its geometry.json."""
SHIPPED_UNETS = {"shapes-blend": "sd/unet_t2i"}
"""Shipped presets whose UNet is another folder of the same weights: `shapes-blend` = the world
with its 4-channel text-to-image UNet (the sd-blend editor, docs/editors.md)."""
GEOMETRY_FILE = "geometry.json"
RGN_CHECKPOINT_NAMES = ("rgn.pt", "rgn.pth", "rgn.safetensors")

# SD 1.x inpainting scheduler (scheduler/scheduler_config.json of runwayml/stable-diffusion-inpainting).
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}


@dataclass(frozen=True)
class ModelSources:
    """Where each family comes from: a preset name, or a root folder, plus per-family overrides."""

    preset: str | None = "tiny"
    root: Path | None = None
    dino: Path | None = None
    clip: Path | None = None
    sd: Path | None = None
    unet: Path | None = None
    """A diffusers UNet folder replacing <sd>/unet (a fine-tuned UNet beside its checkpoint's VAE and text encoder)."""
    rgn: Path | None = None
    seed: int = 0
    """Seed of the random presets' weights."""

    @classmethod
    def parse(cls, models: str, **overrides) -> "ModelSources":
        """`models` is a random preset, a shipped preset (its package folder) or a folder."""
        if models in PRESETS:
            return cls(preset=models, **overrides)
        root = shipped_folder(models) if models in SHIPPED else Path(models)
        if not root.is_dir():
            raise ModelSourceError(
                f"--models {models!r} is neither a preset {PRESETS + tuple(SHIPPED)} nor an existing folder"
            )
        if models in SHIPPED_UNETS and overrides.get("unet") is None:
            overrides = {**overrides, "unet": root / SHIPPED_UNETS[models]}
        return cls(preset=None, root=root, **overrides)

    def geometry(self) -> dict:
        """The edit settings a root folder carries (geometry.json: working_size, dino_size, steps,
        and any other EditConfig field the models were tuned with, e.g. paste_back),
        or {} when it has none (real weights: the engine's defaults)."""
        path = self.root / GEOMETRY_FILE if self.root else None
        if path is None or not path.is_file():
            return {}
        try:
            return dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ModelSourceError(f"cannot read {path}: {exc}") from None

    def folder(self, family: str) -> Path:
        override = getattr(self, family)
        path = override if override is not None else (self.root / family if self.root else None)
        if path is None or not Path(path).is_dir():
            raise ModelSourceError(
                f"no {family} model folder: expected {path or '<root>/' + family} "
                f"(pass --{family} DIR or --models with a folder holding {family}/)"
            )
        return Path(path)


def shipped_folder(name: str) -> Path:
    """The package folder of a shipped preset (editable or regular install alike)."""
    from importlib.resources import files

    package, folder = SHIPPED[name]
    path = Path(str(files(package) / folder))
    if not (path / "dino").is_dir():
        raise ModelSourceError(f"--models {name}: its weights are not installed (expected {path}/dino, clip, sd)")
    return path


@dataclass
class ModelSet:
    dino: torch.nn.Module
    region_net: RegionNetwork
    clip: torch.nn.Module
    clip_tokenizer: ClipTokenizer
    sd_text_encoder: torch.nn.Module
    sd_tokenizer: ClipTokenizer
    unet: torch.nn.Module
    vae: torch.nn.Module
    scheduler_config: dict
    random_weights: bool
    sources: dict = field(default_factory=dict)
    """family -> where its weights came from, for reports and manifests."""
    warnings: list = field(default_factory=list)
    """Things the user should know about the loaded models (e.g. a head-only RGN checkpoint)."""

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell: the VAE halves the resolution once per block but the last."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {
            "dino": self.dino,
            "region_net": self.region_net,
            "clip": self.clip,
            "sd_text_encoder": self.sd_text_encoder,
            "unet": self.unet,
            "vae": self.vae,
        }


def load_models(sources: ModelSources, *, sizes: int, channels: int, roi_size: int, proj_seed: int = 0) -> ModelSet:
    """Build or load every family. `sizes`, `channels`, `roi_size` shape the region network."""
    if sources.preset is not None and sources.preset not in PRESETS:
        raise ModelSourceError(f"model preset {sources.preset!r} is unknown; expected one of {PRESETS}")
    if sources.preset is not None:
        models = _random_models(sources.preset, sources.seed, sizes, channels, roi_size, proj_seed)
    else:
        models = _local_models(sources, sizes, channels, roi_size, proj_seed)
    rgn_path = sources.rgn or _default_rgn_checkpoint(sources.root)
    if rgn_path is not None:
        loaded = load_rgn_checkpoint(models.region_net, rgn_path)
        models.sources["rgn"] = str(rgn_path)  # a head-only file says so in models.warnings
        models.warnings.extend(loaded.warnings)
    for module in models.modules().values():
        module.eval().requires_grad_(False)
    return models


def _default_rgn_checkpoint(root: Path | None) -> Path | None:
    if root is None:
        return None
    found = [root / name for name in RGN_CHECKPOINT_NAMES if (root / name).is_file()]
    return found[0] if found else None


def _random_models(preset: str, seed: int, sizes: int, channels: int, roi_size: int, proj_seed: int) -> ModelSet:
    from . import presets

    build = presets.tiny if preset.startswith("tiny") else presets.full_random
    # fork_rng restores the caller's global RNG afterwards; the seed makes weights reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = build(unet_in=4 if preset.endswith("-blend") else 9)
    dim = parts["dino"].config.hidden_size
    tokenizer = ClipTokenizer.default()
    label = f"random:{preset}:seed{seed}"
    return ModelSet(
        dino=parts["dino"],
        region_net=RegionNetwork(dim, channels, sizes, roi_size, seed=proj_seed),
        clip=parts["clip"],
        clip_tokenizer=tokenizer,
        sd_text_encoder=parts["sd_text_encoder"],
        sd_tokenizer=tokenizer,
        unet=parts["unet"],
        vae=parts["vae"],
        scheduler_config=dict(SD15_SCHEDULER),
        random_weights=True,
        sources={"dino": label, "clip": label, "sd": label, "rgn": f"seeded:{proj_seed}"},
    )


def _local_models(sources: ModelSources, sizes: int, channels: int, roi_size: int, proj_seed: int) -> ModelSet:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPModel, CLIPTextModel, ViTModel

    dino_dir, clip_dir, sd_dir = (sources.folder(f) for f in ("dino", "clip", "sd"))

    def load(what: str, path: Path, fn):
        try:
            return fn()
        except (OSError, ValueError, KeyError) as exc:
            raise ModelSourceError(f"cannot load {what} from {path}: {exc}") from None

    dino = load(
        "DINO (transformers ViTModel)",
        dino_dir,
        lambda: ViTModel.from_pretrained(
            dino_dir, add_pooling_layer=False, attn_implementation="eager", local_files_only=True
        ),
    )
    clip = load("CLIP (transformers CLIPModel)", clip_dir, lambda: CLIPModel.from_pretrained(clip_dir, local_files_only=True))
    text = load(
        "SD text encoder",
        sd_dir,
        lambda: CLIPTextModel.from_pretrained(sd_dir, subfolder="text_encoder", local_files_only=True),
    )
    if sources.unet is not None:
        unet_dir = Path(sources.unet)
        unet = load("SD UNet", unet_dir, lambda: UNet2DConditionModel.from_pretrained(unet_dir, local_files_only=True))
    else:
        unet_dir = sd_dir / "unet"
        unet = load("SD UNet", sd_dir, lambda: UNet2DConditionModel.from_pretrained(sd_dir, subfolder="unet", local_files_only=True))
    vae = load("SD VAE", sd_dir, lambda: AutoencoderKL.from_pretrained(sd_dir, subfolder="vae", local_files_only=True))
    plain = int(vae.config.latent_channels)
    if unet.config.in_channels not in (plain, 2 * plain + 1) or unet.config.out_channels != plain:
        raise ModelSourceError(
            f"{unet_dir} takes {unet.config.in_channels} input channels and gives {unet.config.out_channels}; lredit "
            f"edits with an inpainting UNet ({2 * plain + 1} in, e.g. runwayml/stable-diffusion-inpainting) or a "
            f"text-to-image one ({plain} in, any SD 1.x/2.x checkpoint: the sd-blend editor), both {plain} out"
        )
    scheduler_path = sd_dir / "scheduler" / "scheduler_config.json"
    if not scheduler_path.is_file():
        raise ModelSourceError(f"missing {scheduler_path} (diffusers folder layout expected)")
    return ModelSet(
        dino=dino,
        region_net=RegionNetwork(dino.config.hidden_size, channels, sizes, roi_size, seed=proj_seed),
        clip=clip,
        clip_tokenizer=ClipTokenizer.from_folder(clip_dir),
        sd_text_encoder=text,
        sd_tokenizer=ClipTokenizer.from_folder(sd_dir / "tokenizer"),
        unet=unet,
        vae=vae,
        scheduler_config=json.loads(scheduler_path.read_text()),
        random_weights=False,
        sources={"dino": str(dino_dir), "clip": str(clip_dir), "sd": str(sd_dir), "rgn": f"seeded:{proj_seed}",
                 **({"unet": str(unet_dir)} if sources.unet is not None else {})},
    )


def save_models(models: ModelSet, root: Path) -> None:
    """Write a ModelSet as a local root folder (dino/, clip/, sd/) that `--models DIR` loads."""
    root = Path(root)
    models.dino.save_pretrained(root / "dino")
    models.clip.save_pretrained(root / "clip")
    sd = root / "sd"
    models.sd_text_encoder.save_pretrained(sd / "text_encoder")
    models.unet.save_pretrained(sd / "unet")
    models.vae.save_pretrained(sd / "vae")
    (sd / "scheduler").mkdir(parents=True, exist_ok=True)
    (sd / "scheduler" / "scheduler_config.json").write_text(json.dumps(models.scheduler_config, indent=2))
    models.clip_tokenizer.save(root / "clip")
    models.sd_tokenizer.save(sd / "tokenizer")
