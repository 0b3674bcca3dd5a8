"""EditConfig: every knob of one edit, with the authors' numbers as defaults, and the closed
sets every layer names (backends, precisions, scheduler variants, ONNX Runtime providers).

Each defect of the authors' code (see docs/METHOD.md) has a named switch;
`EditConfig.preset("authors")` turns every fix off so the output can be set beside the published
code's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Mapping, Sequence

from .errors import InputError

COMPAT_PRESETS = ("engine", "authors")
RGN_SAMPLING = ("argmax", "gumbel")
FINAL_PICKS = ("rank", "objective")
"""How the result is picked among the K candidates (EditConfig.final_pick)."""
ANCHOR_SOURCES = ("dino", "caption", "both")
"""Where the anchors come from (EditConfig.anchor_source)."""
ANCHOR_POOL = 3
PRUNE_DECODES = ("full", "crop")
"""How search's pruning decodes the mid-schedule x0 (EditConfig.prune_decode)."""
PRUNE_CROP_MARGIN = 2
"""prune_decode 'crop': latent cells decoded beyond a box on every side, so the decoder's
convolutions see the box's surroundings (its mid-block attention still sees only the crop)."""
EDITORS = ("auto", "inpaint", "sd-blend")
"""The base editor (EditConfig.editor): 'inpaint' = a 9-channel SD inpainting UNet, conditioned on
the mask and the masked image; 'sd-blend' = per-step latent blending (Region-Aware Diffusion), for
4-channel text-to-image UNets (and on top of an inpainting UNet's conditioning when forced there);
'auto' = by the UNet's input channels (9: inpaint, 4: sd-blend)."""
"""anchor_source caption/both: the candidate pool is this many times K salient patches."""

# Scheduler variants by EditConfig.scheduler name: the diffusers class and the config overrides
# that select the variant. The numpy runtime, the torch reference and the export's tables all
# read this one table, so every side runs the same variant.
SCHEDULER_CLASSES = {
    "pndm": "PNDMScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
}
SCHEDULER_OVERRIDES = {
    "PNDMScheduler": {"skip_prk_steps": True},
    "DPMSolverMultistepScheduler": {"algorithm_type": "dpmsolver++", "solver_order": 2},
}
SCHEDULERS = ("model", *SCHEDULER_CLASSES)
"""'model' = the class the model folder names (PNDM for SD 1.x inpainting)."""


class Backend(str, Enum):
    """What runs the graphs of an edit (lr-edit --backend, Editor.from_bundle, lr-bench)."""

    TORCH = "torch"
    """The reference: the export wrappers run eagerly in torch, diffusers' schedulers."""
    ORT = "ort"
    """A bundle's ONNX graphs on ONNX Runtime (CPU, or the CUDA provider with IO binding)."""
    TRT = "trt"
    """A bundle's TensorRT engines (built on the GPU that runs them)."""
    TORCH_CUDA = "torch-cuda"
    """The engine's own stages (numpy schedulers, row-batched denoiser) on torch sessions: fp16,
    channels-last, CUDA graphs and device-resident tensors on a GPU; fp32 on the CPU, same code
    (engine/runtimes/torch_cuda.py)."""

    @classmethod
    def parse(cls, name: str | Backend) -> Backend:
        try:
            return cls(name)
        except ValueError:
            raise InputError(f"backend {name!r} is unknown; expected one of {[b.value for b in cls]}") from None


class Precision(str, Enum):
    """Weights and activations of exported graphs (fp16 keeps fragile ops in fp32)."""

    FP32 = "fp32"
    FP16 = "fp16"


CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDERS = ("CPUExecutionProvider",)
CUDA_PROVIDERS = (CUDA_PROVIDER, *CPU_PROVIDERS)


def ort_providers(device: str) -> tuple[str, ...]:
    """ONNX Runtime providers for a torch-style device name: 'cuda[:N]' puts the graphs on the CUDA
    provider (CPU as the fallback for ops it lacks), anything else on the CPU."""
    return CUDA_PROVIDERS if str(device).startswith("cuda") else CPU_PROVIDERS


class RegionMode(str, Enum):
    """How each anchor's box size is chosen (see engine/regions.py)."""

    RGN = "rgn"
    """One pass: the RGN's choice (argmax or Gumbel). K inpaints. Meaningful with a trained checkpoint."""
    SEARCH = "search"
    """Inpaint every (anchor, size) pair, keep per anchor the size with the lowest loss L: the exact
    optimum of the per-image objective. K x M inpaints (pruned by successive halving by default)."""
    LEARN = "learn"
    """Train the RGN on this image from the pairs' losses (rewards -L), then use its choice."""


REGION_MODES = tuple(m.value for m in RegionMode)
MAX_STEPS = 1000
"""The most steps any config allows; a scheduler's table may allow fewer (ops.schedulers.max_steps)."""
WORKING_SIZE_RULE = "a multiple of 8, >= 64"


def working_size_ok(value) -> bool:
    """The inpainting resolution rule shared by lr-edit and lr-export (VAE factor 8, 8x8 latents at least)."""
    return _is_int(value) and value >= 64 and value % 8 == 0


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class EditConfig:
    """One edit's settings. Speed/quality trade-offs are noted per field."""

    # -- anchors and proposals -------------------------------------------------------------
    anchors: int = 9
    """K: candidates inpainted per edit. Cost grows linearly (UNet batch is 2K)."""
    half_sizes: tuple[int, ...] = (4, 6, 8, 10, 12, 14)
    """M box half-sizes in feature cells (the code's range(4, 15, 2))."""
    roi_size: int = 8
    """l: ROI-align output side (the code's 8; the paper's 7)."""
    roi_sampling_ratio: int = -1
    """Samples per bin side; -1 = adaptive ceil(box/l) as torchvision's default."""
    roi_aligned: bool = False
    """torchvision `aligned` (half-pixel shift); the code uses the default False."""
    proj_channels: int = 12
    """c: channels of the seeded 1x1 projection of DINO features before pooling."""
    proj_seed: int = 0
    """Seed of the projection and of the RGN when no checkpoint is given."""
    rgn_sampling: str = "argmax"
    """'argmax' (deterministic) or 'gumbel' (the code's hard Gumbel sample, seeded by `seed`)."""
    anchor_spacing: int = 4
    """Minimum Chebyshev distance in cells between anchors, picked greedily by saliency (0 = the
    paper's plain top-K). Applies to distinct anchors; the authors' rule (distinct_anchors off)
    has none. 4 = the smallest half-size: no anchor sits inside another's smallest box,
    so no candidate is a neighbour's box moved by one cell (docs/regions.md, "Anchor spacing")."""
    anchor_source: str = "dino"
    """Where the K anchors come from: 'dino' = DINO's saliency alone (the paper); with a source
    caption, 'caption' = the ANCHOR_POOL * K most salient (spaced) patches re-ordered by CLIP's
    similarity of a crop around each to the caption, 'both' = by the sum of the two ranks
    (docs/regions.md, "Anchors placed by the caption"). Without a caption: 'dino'."""

    # -- region modes (issue #12) -----------------------------------------------------------
    regions: RegionMode | None = None
    """rgn, search or learn; None = search without an RGN checkpoint, rgn with one."""
    prune: bool = True
    """search: successive halving on mid-schedule scores. Off = all K x M pairs run every step."""
    prune_fractions: tuple[float, ...] = (0.2, 0.3, 0.6)
    """Fractions of the schedule at which the x0 predictions are decoded and scored; after each,
    only the best `prune_keep` share of every anchor's live sizes continues."""
    prune_keep: float = 0.5
    """Share of an anchor's live sizes kept at each pruning phase (rounded up, at least one)."""
    prune_decode: str = "full"
    """search: how a pruning phase decodes x0: 'full' = the whole latent; 'crop' = only a square
    latent crop around each pair's box (PRUNE_CROP_MARGIN cells beyond it), the source's pixels
    outside the box (as paste-back). The final decode is always full."""
    learn_iterations: int = 10
    """learn: Adam steps on the RGN (the authors' 10); each costs no inpainting (losses are cached)."""
    learn_lr: float = 5e-3
    """learn: Adam learning rate (the authors' README: 5e-3)."""
    max_unet_batch: int = 0
    """Cap on UNet rows per call (memory); 0 = the bundle's profile maximum (unlimited on torch).
    Larger batches run as chunks; results match the unchunked batch within 2 uint8 levels."""

    # -- resolutions -----------------------------------------------------------------------
    dino_size: int = 256
    """DINO input side: short side resized to it, centre crop. 256 with patch 8 -> 32x32 map."""
    working_size: int = 512
    """Inpainting resolution (multiple of 8). Cost grows with its square."""

    # -- diffusion -------------------------------------------------------------------------
    steps: int = 50
    """Denoising steps. Cost is linear in it; 25 is usually close in quality."""
    guidance: float = 7.5
    """Classifier-free guidance scale; <= 1 disables guidance (UNet batch K instead of 2K)."""
    scheduler: str = "model"
    """'model' = the scheduler named by the model folder (PNDM for SD 1.x inpainting)."""
    prompt_template: str = "a high quality image of {prompt}."
    negative_prompt: str = ""
    seed: int = 0
    """Initial noise of candidate k with box size m comes from engine.noise, keyed (seed, k, m): the same on
    every backend, and independent of K."""
    editor: str = "auto"
    """The base editor (EDITORS): 'auto' = 'inpaint' for a 9-channel UNet, 'sd-blend' for a
    4-channel one; 'sd-blend' blends, after every step, the latent outside the box with the source
    latent noised to that step (docs/editors.md)."""
    paste_back: bool = False
    """Composite the decoded image into the working image inside the mask only (keeps every
    pixel outside the box bit-exact instead of VAE-round-tripped)."""

    # -- ranking ---------------------------------------------------------------------------
    rank_alpha: float = 2.0
    rank_beta: float = 1.0
    rank_softmax: bool = True
    """Softmax-normalise t2i and i2i over the K candidates before weighting (the code's way)."""
    rank_top_t2i: int = 3
    """The winner is the best score among the top-N candidates by t2i (0 = all)."""
    final_pick: str = "rank"
    """Which of the K candidates is the result: 'rank' = the CLIP ranking above (the authors'),
    'objective' = the lowest region loss L (the objective the sizes were chosen by; with a source
    caption its L_dir asks that the source be replaced). The shapes world's tuning split chose
    'objective' (bench/RESULTS.md, "World: decisions"); real weights keep 'rank' until measured."""

    # -- fixes of the authors' defects (False = the code's behaviour) -------------------------
    fix_anchor_axes: bool = True
    """Anchor (row, col) used as (y, x); the code swaps them and pools transposed regions."""
    fix_roi_scale: bool = True
    """spatial_scale 1 for boxes in feature cells; the code's 0.125 shrinks every box 8x."""
    fix_rgn_layout: bool = True
    """Each anchor's RGN input is its own M pooled maps; the code mixes anchors and sizes."""
    distinct_anchors: bool = True
    """K distinct top patches, boxes clamped at the border; the code confines anchors to the
    centre (row, col in [w, n-1-w] for w = `max_window`) and fills up with top patches,
    duplicates included."""
    max_window: int = 15
    """w: the code's `max_window_size` argument, its border margin for anchors when
    distinct_anchors is off (its half-sizes are range(4, w + 1, 2))."""
    inpaint_original: bool = True
    """Inpaint the original image resized to working_size, the mask drawn there. False = the
    code: the mask drawn on the dino_size crop (end row and column excluded, as its
    `mask[:, y1:y2, x1:x2] = 1`), crop and mask resized to working_size bilinearly (torchvision
    `T.Resize` on tensors), the mask binarised at 0.5 (diffusers)."""
    dino_imagenet_norm: bool = True
    """ImageNet mean/std before DINO (what DINO was trained with); the code feeds [0, 1]."""

    compat: str = "engine"
    """Which preset this config started from; recorded in the report."""

    @classmethod
    def preset(cls, name: str, **overrides) -> "EditConfig":
        """'engine' (fixes on) or 'authors' (the published code's behaviour), then overrides."""
        if name not in COMPAT_PRESETS:
            raise InputError(f"compat preset {name!r} is unknown; expected one of {COMPAT_PRESETS}")
        base = {}
        if name == "authors":
            base = dict(
                fix_anchor_axes=False,
                fix_roi_scale=False,
                fix_rgn_layout=False,
                distinct_anchors=False,
                inpaint_original=False,
                dino_imagenet_norm=False,
                anchor_spacing=0,
                rgn_sampling="gumbel",
                compat="authors",
            )
        base.update(overrides)
        return cls(**base).validated()

    def replace(self, **changes) -> "EditConfig":
        return dataclasses.replace(self, **changes).validated()

    def check_overrides(self, overrides: Mapping, fixed: Sequence[str] = (), fixed_message: str = "") -> None:
        """The one check of per-edit overrides (EditPipeline.edit, edit_batch, lr-edit): an unknown
        key is an InputError naming the valid ones; so is a change to a `fixed` field, with
        `fixed_message` ('{setting}' = the fixed value) saying why."""
        known = sorted(f.name for f in dataclasses.fields(self))
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise InputError(f"unknown edit setting(s) {unknown}; EditConfig has {known}")
        for name in fixed:
            if name in overrides and overrides[name] != getattr(self, name):
                setting = f"{name}={getattr(self, name)!r}"
                raise InputError(f"{name}={overrides[name]!r}: " + fixed_message.format(setting=setting))

    def __post_init__(self) -> None:
        if isinstance(self.regions, str) and self.regions in REGION_MODES:
            object.__setattr__(self, "regions", RegionMode(self.regions))
        object.__setattr__(self, "prune_fractions", tuple(float(f) for f in self.prune_fractions))
        if isinstance(self.half_sizes, list):  # geometry.json and bundle manifests carry JSON lists
            object.__setattr__(self, "half_sizes", tuple(self.half_sizes))

    def region_mode(self, has_checkpoint: bool) -> RegionMode:
        """The mode this edit runs: `regions`, or by default search without an RGN checkpoint
        (a seeded RGN picks one size for every anchor) and rgn with one."""
        if self.regions is not None:
            return self.regions
        return RegionMode.RGN if has_checkpoint else RegionMode.SEARCH

    @property
    def do_guidance(self) -> bool:
        return self.guidance > 1.0

    def validated(self) -> "EditConfig":
        """Check every field; raise one InputError naming the field, its value and the range."""
        problems = []

        def need(ok: bool, name: str, expected: str) -> None:
            if not ok:
                problems.append(f"{name}={getattr(self, name)!r} (expected {expected})")

        need(isinstance(self.anchors, int) and self.anchors >= 1, "anchors", "an integer >= 1")
        need(
            len(self.half_sizes) >= 1 and all(isinstance(s, int) and s >= 1 for s in self.half_sizes),
            "half_sizes",
            "one or more integers >= 1",
        )
        need(self.roi_size >= 1, "roi_size", ">= 1")
        need(self.roi_sampling_ratio == -1 or self.roi_sampling_ratio >= 1, "roi_sampling_ratio", "-1 or >= 1")
        need(self.proj_channels >= 1, "proj_channels", ">= 1")
        need(isinstance(self.max_window, int) and self.max_window >= 0, "max_window", "an integer >= 0")
        need(self.rgn_sampling in RGN_SAMPLING, "rgn_sampling", f"one of {RGN_SAMPLING}")
        need(isinstance(self.anchor_spacing, int) and self.anchor_spacing >= 0, "anchor_spacing", "an integer >= 0")
        need(self.regions is None or isinstance(self.regions, RegionMode), "regions", f"None or one of {REGION_MODES}")
        need(
            all(0.0 < f < 1.0 for f in self.prune_fractions) and list(self.prune_fractions) == sorted(set(self.prune_fractions)),
            "prune_fractions",
            "increasing fractions strictly between 0 and 1",
        )
        need(0.0 < self.prune_keep <= 1.0, "prune_keep", "a share in (0, 1]")
        need(self.prune_decode in PRUNE_DECODES, "prune_decode", f"one of {PRUNE_DECODES}")
        need(self.prune_decode != "crop" or self.paste_back, "prune_decode",
             "'full' unless paste_back is on ('crop' keeps the source's pixels outside each box, as paste-back does)")
        need(isinstance(self.learn_iterations, int) and self.learn_iterations >= 1, "learn_iterations", "an integer >= 1")
        need(self.learn_lr > 0, "learn_lr", "> 0")
        need(
            _is_int(self.max_unet_batch) and (self.max_unet_batch == 0 or self.max_unet_batch >= (2 if self.do_guidance else 1)),
            "max_unet_batch",
            "0 (no cap) or an integer >= 2 with guidance: each candidate row runs as 2 UNet rows",
        )
        need(self.dino_size >= 32 and self.dino_size % 8 == 0, "dino_size", "a multiple of 8, >= 32")
        need(working_size_ok(self.working_size), "working_size", WORKING_SIZE_RULE)
        need(_is_int(self.steps) and 1 <= self.steps <= MAX_STEPS, "steps", f"an integer in 1..{MAX_STEPS}")
        need(_is_int(self.seed) and 0 <= self.seed < 2**64, "seed", "an integer in 0..2**64-1 (the noise key is 64 bits)")
        need(0.0 <= self.guidance <= 100.0, "guidance", "a number in 0..100")
        need(self.scheduler in SCHEDULERS, "scheduler", f"one of {SCHEDULERS}")
        need("{prompt}" in self.prompt_template, "prompt_template", "a string containing '{prompt}'")
        need(self.rank_top_t2i >= 0, "rank_top_t2i", ">= 0")
        need(self.final_pick in FINAL_PICKS, "final_pick", f"one of {FINAL_PICKS}")
        need(self.anchor_source in ANCHOR_SOURCES, "anchor_source", f"one of {ANCHOR_SOURCES}")
        need(self.editor in EDITORS, "editor", f"one of {EDITORS}")
        need(self.compat in COMPAT_PRESETS, "compat", f"one of {COMPAT_PRESETS}")
        if problems:
            raise InputError("invalid edit config: " + "; ".join(problems))
        return self

    def to_report(self) -> dict:
        data = dataclasses.asdict(self)
        data["half_sizes"] = list(self.half_sizes)
        data["prune_fractions"] = list(self.prune_fractions)
        data["regions"] = None if self.regions is None else self.regions.value
        return data


EDIT_FIELDS = frozenset(f.name for f in dataclasses.fields(EditConfig))
"""The names of every edit setting: what a models folder's geometry.json or a bundle's
edit_defaults may set."""
