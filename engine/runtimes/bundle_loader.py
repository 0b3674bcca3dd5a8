"""Loading a bundle's non-graph parts for any backend: file checks, assets (tokenizers,
projection, scheduler tables), the config the graphs were exported for, and the pipeline that
holds a bundle's geometry fixed. The sessions come from ort_runtime or trt_runtime.
"""

from __future__ import annotations

import zipfile
from typing import Mapping

import numpy as np

from lredit import bundle as layout
from lredit.config import EDIT_FIELDS, EditConfig, Precision
from lredit.engine.core.pipeline import EditPipeline, PipelineAssets
from lredit.engine.ops.batching import profile_batch_limits
from lredit.engine.ops.schedulers import make_scheduler
from lredit.engine.runtimes.file_checks import Verify, check_files
from lredit.errors import BundleError, InputError
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import GraphEntry, Manifest
from lredit.rgn_checkpoint import RgnParams, load_rgn
from lredit.tokenizer import ClipTokenizer


def verify_files(manifest: Manifest, files: Mapping[str, str], mode: bool | Verify = Verify.FULL) -> None:
    """Every file exists inside the bundle with its recorded sha256, or a BundleError (hashing
    only files whose stamp changed, in mode STAMP: see file_checks)."""
    check_files(manifest, files, Verify.of(mode))


def require_graphs(manifest: Manifest) -> None:
    missing = [g for g in PIPELINE_GRAPHS if g not in manifest.graphs]
    if missing:
        raise BundleError(f"bundle {manifest.bundle} lacks the graphs {missing}; export them with "
                          f"lr-export --graphs {' '.join(missing)}")


def bundle_assets(manifest: Manifest, roi_pool, verify: bool | Verify = True) -> PipelineAssets:
    """Everything but the graphs, from the bundle: tokenizers, projection, RGN weights, scheduler tables."""
    check_bundle_tables(manifest)
    verify_files(manifest, manifest.assets, verify)
    pipe, sched = manifest.pipeline, manifest.scheduler
    weight, bias = load_projection(manifest)
    return PipelineAssets(
        clip_tokenizer=ClipTokenizer.from_folder(manifest.path(layout.TOKENIZERS["clip"])),
        sd_tokenizer=ClipTokenizer.from_folder(manifest.path(layout.TOKENIZERS["sd"])),
        projection_weight=weight,
        projection_bias=bias,
        make_scheduler=lambda name: make_scheduler(name, dict(sched.config), sched.alphas_cumprod),
        random_weights=manifest.models.random_weights,
        sources=dict(manifest.models.families),
        latent_channels=pipe.latent_channels,
        unet_channels=unet_channels(pipe),
        vae_scale_factor=pipe.vae_scale_factor,
        clip_image_size=pipe.clip_image_size,
        roi_pool=roi_pool,
        batch_limits=profile_batch_limits(manifest.graphs),
        decoder_crop_min=decoder_crop_min(manifest.graphs.get("vae_decoder")),
        rgn=_bundle_rgn(manifest, (weight, bias)),
    )


def decoder_crop_min(entry: GraphEntry | None) -> int | None:
    """The smallest latent side the bundle's VAE decoder takes, if its latent axis is dynamic
    (bundles exported before crops fix it at the working size: None)."""
    if entry is None or "latent" not in entry.dynamic_axes:
        return None
    shapes = [shape for shape in entry.profile.values() if shape.get("min")]
    return int(shapes[0]["min"][2]) if shapes else None


def load_projection(manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """The seeded 1x1 projection (weight [c, d], bias [c], float), or a BundleError: numpy
    refuses a pickled array (allow_pickle=False), which lands here too."""
    path = manifest.path(layout.PROJECTION)
    try:
        with np.load(path, allow_pickle=False) as proj:
            weight, bias = np.asarray(proj["weight"]), np.asarray(proj["bias"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
        raise BundleError(f"bundle {manifest.bundle}: {layout.PROJECTION} is not a projection npz with float arrays "
                          f"'weight' and 'bias' ({type(exc).__name__}: {exc}); re-run lr-export --out {manifest.bundle}") from None
    c = manifest.pipeline.proj_channels
    if (weight.ndim != 2 or weight.shape[0] != c or bias.shape != (c,)
            or not (np.issubdtype(weight.dtype, np.floating) and np.issubdtype(bias.dtype, np.floating))):
        raise BundleError(f"bundle {manifest.bundle}: {layout.PROJECTION} holds weight {weight.dtype}{list(weight.shape)} and "
                          f"bias {bias.dtype}{list(bias.shape)}; proj_channels={c} needs float [{c}, d] and [{c}]")
    return weight, bias


def check_bundle_tables(manifest: Manifest) -> None:
    """The scheduler table and the pipeline geometry agree with the graphs, before any is loaded."""
    sched = manifest.scheduler
    train_steps = sched.config.get("num_train_timesteps", 1000)
    alphas = np.asarray(sched.alphas_cumprod, dtype=np.float64)
    if not isinstance(train_steps, int) or isinstance(train_steps, bool) or train_steps < 1 or len(alphas) != train_steps:
        raise BundleError(f"bundle {manifest.bundle}: the scheduler's alphas_cumprod has {len(alphas)} entries; its config's "
                          f"num_train_timesteps={train_steps!r} needs as many (>= 1); re-run lr-export --out {manifest.bundle}")
    if not (np.all(np.isfinite(alphas)) and np.all(alphas > 0) and np.all(alphas <= 1)):
        raise BundleError(f"bundle {manifest.bundle}: the scheduler's alphas_cumprod holds values outside (0, 1]")
    problems = geometry_problems(manifest)
    if problems:
        raise BundleError(f"bundle {manifest.bundle}: the manifest's pipeline geometry disagrees with its graphs: "
                          + "; ".join(problems) + f"; re-run lr-export --out {manifest.bundle}")


def geometry_problems(manifest: Manifest) -> list[str]:
    """Each pipeline field that a graph's fixed dimension contradicts, as 'graph.tensor[axis] is N, field=V needs M'."""
    pipe = manifest.pipeline
    latent = pipe.working_size // pipe.vae_scale_factor if pipe.vae_scale_factor > 0 else -1
    wants = [
        ("dino", "pixels", 2, pipe.dino_size, f"dino_size={pipe.dino_size}"),
        ("rgn", "pooled", 1, len(pipe.half_sizes) * pipe.proj_channels,
         f"{len(pipe.half_sizes)} half_sizes x proj_channels={pipe.proj_channels}"),
        ("rgn", "pooled", 2, pipe.roi_size, f"roi_size={pipe.roi_size}"),
        ("rgn", "log_probs", 1, len(pipe.half_sizes), f"{len(pipe.half_sizes)} half_sizes"),
        ("clip_vision", "pixels", 2, pipe.clip_image_size, f"clip_image_size={pipe.clip_image_size}"),
        ("unet", "sample", 1, unet_channels(pipe), f"editor={pipe.editor} with latent_channels={pipe.latent_channels}"),
        ("unet", "sample", 2, latent, f"working_size={pipe.working_size} / vae_scale_factor={pipe.vae_scale_factor}"),
        ("vae_encoder", "images", 2, pipe.working_size, f"working_size={pipe.working_size}"),
        ("vae_decoder", "images", 2, pipe.working_size, f"working_size={pipe.working_size}"),
    ]
    problems = []
    for graph, tensor, axis, want, field in wants:
        got = _fixed_dim(manifest, graph, tensor, axis)
        if got is not None and got != want:
            problems.append(f"{graph}.{tensor}[{axis}] is {got}, {field} needs {want}")
    return problems


def unet_channels(pipe) -> int:
    """The UNet's input channels the manifest's editor kind implies."""
    return pipe.latent_channels if pipe.editor == "sd-blend" else 2 * pipe.latent_channels + 1


def _fixed_dim(manifest: Manifest, graph: str, tensor: str, axis: int) -> int | None:
    entry = manifest.graphs.get(graph)
    rows = [t for t in (*entry.inputs, *entry.outputs) if t.name == tensor] if entry else []
    if not rows or len(rows[0].opt_shape) <= axis:
        return None
    return rows[0].opt_shape[axis]


def check_signature(entry: GraphEntry, inputs: list[tuple], outputs: list[tuple]) -> None:
    """A graph's (name, dtype, shape) inputs and outputs, as its runtime reports them, are the
    manifest's: names in order, ranks, fixed dimensions, dynamic axes left dynamic, dtypes. A graph
    swapped for another of the bundle (sha256 entries rewritten) is caught here. A dimension the
    runtime reports as a symbol where the manifest fixes it is accepted (shape inference may lose it)."""
    for kind, got, want in (("inputs", inputs, entry.inputs), ("outputs", outputs, entry.outputs)):
        names = [name for name, _, _ in got]
        if names != [t.name for t in want]:
            raise BundleError(f"graph {entry.name}: {kind} {names} differ from the manifest's {[t.name for t in want]}; "
                              "was a graph file replaced? re-run lr-export")
        for (name, dtype, shape), spec in zip(got, want):
            if not _dims_match(list(shape), _expected_dims(spec, entry.dynamic_axes)):
                raise BundleError(f"graph {entry.name}: {kind[:-1]} {name} has shape {list(shape)}, the manifest says "
                                  f"{list(spec.shape)} (sizes {list(spec.opt_shape)}); re-run lr-export")
            if not _dtype_matches(dtype, spec.dtype, entry.precision):
                raise BundleError(f"graph {entry.name}: {kind[:-1]} {name} is {dtype}, the manifest says {spec.dtype}; re-run lr-export")


def _dims_match(got: list, expected: list) -> bool:
    if len(got) != len(expected):
        return False
    for dim, want in zip(got, expected):
        if want is DYNAMIC and isinstance(dim, int):
            return False  # exported with a fixed size where the manifest promises a dynamic axis
        if isinstance(want, int) and isinstance(dim, int) and dim != want:
            return False
    return True


DYNAMIC = object()
"""An axis the manifest declares dynamic (its `dynamic_axes`)."""


def _expected_dims(spec, dynamic_axes: tuple[str, ...]) -> list:
    """Per axis: the fixed size, DYNAMIC, or None (unknown). Symbols fixed at export ('latent',
    'text_len') take their size from the opt shape."""
    dims = []
    for i, dim in enumerate(spec.shape):
        if isinstance(dim, int):
            dims.append(dim)
        elif dim in dynamic_axes:
            dims.append(DYNAMIC)
        else:
            dims.append(spec.opt_shape[i] if i < len(spec.opt_shape) else None)
    return dims


def _dtype_matches(got: str, want: str, precision) -> bool:
    if got == want:
        return True
    floats = ("float16", "float32")
    return precision is Precision.FP16 and got in floats and want in floats
def _bundle_rgn(manifest: Manifest, projection) -> RgnParams | None:
    """The bundle's RGN weights in numpy (bundles exported before rgn.safetensors have none)."""
    if layout.RGN_WEIGHTS not in manifest.assets:
        return None
    return load_rgn(manifest.path(layout.RGN_WEIGHTS), projection).params


def bundle_config(manifest: Manifest, config: EditConfig | None = None) -> EditConfig:
    """`config` with the graph geometry the bundle was exported for; without a `config`, the
    defaults its models folder set (manifest pipeline.edit_defaults) over EditConfig's."""
    pipe = manifest.pipeline
    return (config or bundle_defaults(manifest)).replace(
        working_size=pipe.working_size,
        dino_size=pipe.dino_size,
        half_sizes=pipe.half_sizes,
        roi_size=pipe.roi_size,
        proj_channels=pipe.proj_channels,
    )


def bundle_defaults(manifest: Manifest) -> EditConfig:
    """EditConfig with the bundle's edit_defaults, or a BundleError naming what is wrong."""
    defaults = dict(manifest.pipeline.edit_defaults)
    unknown = sorted(set(defaults) - EDIT_FIELDS)
    if unknown:
        raise BundleError(f"bundle {manifest.bundle}: pipeline.edit_defaults names {unknown}, which are not edit settings; "
                          f"re-run lr-export --out {manifest.bundle}")
    try:
        return EditConfig(**defaults).validated()
    except (InputError, TypeError) as exc:
        raise BundleError(f"bundle {manifest.bundle}: pipeline.edit_defaults are not a valid config ({exc}); "
                          f"re-run lr-export --out {manifest.bundle}") from None


BUNDLE_GEOMETRY = ("working_size", "dino_size", "half_sizes", "roi_size", "proj_channels")


BUNDLE_FIXED = ("this bundle was exported for {setting}; re-export with lr-export (e.g. --working-size) "
                "or use --backend torch without --bundle")


def check_bundle_geometry(bundle_cfg: EditConfig, requested: dict) -> None:
    """A requested setting the bundle's graphs were not exported for is an error, never ignored."""
    bundle_cfg.check_overrides(requested, BUNDLE_GEOMETRY, BUNDLE_FIXED)


class BundlePipeline(EditPipeline):
    """An EditPipeline whose graph geometry is fixed by the bundle it was exported as."""

    open_report = None
    """How the bundle was opened (session_cache.OpenReport), where the loader records it."""
    fixed_settings = BUNDLE_GEOMETRY
    fixed_message = BUNDLE_FIXED

    def __init__(self, sessions, assets, config, manifest: Manifest):
        super().__init__(sessions, assets, config)
        self.manifest = manifest

    def check_limits(self, cfg: EditConfig) -> None:
        limit = self.manifest.pipeline.max_candidates
        if cfg.anchors > limit:
            raise InputError(f"anchors={cfg.anchors}: this bundle's graphs take at most {limit} candidates")
