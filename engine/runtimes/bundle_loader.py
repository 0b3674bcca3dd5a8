"""Loading a bundle's non-graph parts for any backend: file checks, assets (tokenizers,
projection, scheduler tables), the config the graphs were exported for, and the pipeline that
holds a bundle's geometry fixed. The sessions come from ort_runtime or trt_runtime.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from lredit import bundle as layout
from lredit.config import EditConfig
from lredit.engine.core.pipeline import EditPipeline, PipelineAssets
from lredit.engine.ops.batching import profile_batch_limits
from lredit.engine.ops.schedulers import make_scheduler
from lredit.engine.runtimes.file_checks import Verify, check_files
from lredit.errors import BundleError, InputError
from lredit.graphs import PIPELINE_GRAPHS
from lredit.manifest import Manifest
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
    verify_files(manifest, manifest.assets, verify)
    pipe, sched = manifest.pipeline, manifest.scheduler
    with np.load(manifest.path(layout.PROJECTION)) as proj:
        weight, bias = proj["weight"], proj["bias"]
    return PipelineAssets(
        clip_tokenizer=ClipTokenizer.from_folder(manifest.path(layout.TOKENIZERS["clip"])),
        sd_tokenizer=ClipTokenizer.from_folder(manifest.path(layout.TOKENIZERS["sd"])),
        projection_weight=weight,
        projection_bias=bias,
        make_scheduler=lambda name: make_scheduler(name, dict(sched.config), sched.alphas_cumprod),
        random_weights=manifest.models.random_weights,
        sources=dict(manifest.models.families),
        latent_channels=pipe.latent_channels,
        vae_scale_factor=pipe.vae_scale_factor,
        clip_image_size=pipe.clip_image_size,
        roi_pool=roi_pool,
        batch_limits=profile_batch_limits(manifest.graphs),
        rgn=_bundle_rgn(manifest, (weight, bias)),
    )


def _bundle_rgn(manifest: Manifest, projection) -> RgnParams | None:
    """The bundle's RGN weights in numpy (bundles exported before rgn.safetensors have none)."""
    if layout.RGN_WEIGHTS not in manifest.assets:
        return None
    return load_rgn(manifest.path(layout.RGN_WEIGHTS), projection).params


def bundle_config(manifest: Manifest, config: EditConfig | None = None) -> EditConfig:
    """`config` with the graph geometry the bundle was exported for."""
    pipe = manifest.pipeline
    return (config or EditConfig()).replace(
        working_size=pipe.working_size,
        dino_size=pipe.dino_size,
        half_sizes=pipe.half_sizes,
        roi_size=pipe.roi_size,
        proj_channels=pipe.proj_channels,
    )


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
