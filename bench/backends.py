"""What lr-bench runs: the authors' way of working and the engine's backends, each behind one
`run(image, prompt, anchors, steps) -> stage milliseconds` call, on the same models and inputs.

- authors: DINO, anchors, RGN and masks as the reference does them, then diffusers'
  StableDiffusionInpaintPipeline called once with the K masks as one batch (the most favourable
  reading of their code), eager torch (fp16 on GPU, fp32 on CPU), then CLIP ranking in torch.
  `authors_iterations` N repeats inpainting + ranking N more times, as their README's per-image
  loop does (10 iterations, then the final pass).
- engine-torch: the engine's pipeline with torch graphs (the reference).
- engine-ort: the exported bundle on ONNX Runtime (CPU, or CUDA where the machine has it).
- engine-trt: the bundle's TensorRT engines.
- engine-torch-cuda: the engine's stages on torch sessions (engine/runtimes/torch_cuda.py): fp16,
  channels-last and UNet graph replay on CUDA; -eager without graph replay, -compile with
  torch.compile of the UNet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lredit.config import Backend, ort_providers
from lredit.errors import BackendUnavailableError, LreditError
from lredit.manifest import Manifest

from .config import AUTHORS, BACKEND_NAMES, TORCH_CUDA_VARIANTS, BenchConfig, engine_backend


@dataclass
class Runner:
    name: str
    run: Callable[..., dict[str, float]]
    """(image, prompt, anchors, steps, overrides) -> the pipeline's stage timings in ms."""
    precision: str
    counters: dict = field(default_factory=dict)
    """Counts of the last run (unet_rows: UNet rows over the whole edit)."""


def normalise_stages(timings: dict[str, float], steps: int) -> dict[str, float]:
    """The pipeline's timer stages -> the stages every bench record reports."""
    t = {name: float(ms) for name, ms in timings.items()}
    out = {
        "preprocess": t.get("validate", 0.0) + t.get("preprocess", 0.0),
        "dino": t.get("dino", 0.0),
        "anchors": t.get("anchors", 0.0),
        "roi_rgn": t.get("roi_pool", 0.0) + t.get("rgn", 0.0),
        "masks": t.get("masks", 0.0),
        "text": t.get("text", 0.0),
        "vae_encode": t.get("vae_encode", 0.0),
        # pruning decodes and scores x0 inside the denoise stage: reported apart, as regions_score
        "denoise": t.get("denoise", 0.0) - t.get("prune_decode", 0.0) - t.get("prune_score", 0.0),
        "regions_score": t.get("prune_decode", 0.0) + t.get("prune_score", 0.0) + t.get("score", 0.0),
        "vae_decode": t.get("vae_decode", 0.0),
        "rank": t.get("rank", 0.0),
    }
    out["denoise_per_step"] = out["denoise"] / max(steps, 1)
    # Text encoding to decoded pixels: what an inpainting-only peer can be set beside.
    out["inpaint"] = out["text"] + out["vae_encode"] + out["denoise"] + out["vae_decode"]
    return out


def _pipeline_runner(name: str, pipeline, precision: str, extra_passes: int = 0) -> Runner:
    def run(image, prompt: str, anchors: int, steps: int, overrides: dict | None = None) -> dict[str, float]:
        result = pipeline.edit(image, prompt, anchors=anchors, steps=steps, **(overrides or {}))
        stages = normalise_stages(result.timings, steps)
        rows = _unet_rows(result)
        for _ in range(extra_passes):  # the authors' per-image loop: inpaint + rank again
            again_result = pipeline.edit(image, prompt, anchors=anchors, steps=steps)
            again = normalise_stages(again_result.timings, steps)
            rows += _unet_rows(again_result)
            for key in ("text", "vae_encode", "denoise", "vae_decode", "rank", "inpaint"):
                stages[key] += again[key]
        stages["denoise_per_step"] = stages["denoise"] / (max(steps, 1) * (1 + extra_passes))
        runner.counters["unet_rows"] = rows
        return stages

    runner = Runner(name, run, precision)
    return runner


def _unet_rows(result) -> int | None:
    """UNet rows of one edit (the authors' diffusers call counts its own: 2K per UNet call)."""
    return None if result.regions is None else int(result.regions.unet_rows)


def _torch_dtype(cfg: BenchConfig):
    import torch

    return torch.float16 if cfg.torch_precision == "fp16" else torch.float32


def load_models(cfg: BenchConfig, manifest: Manifest | None):
    from lredit.export.models import ModelSources
    from lredit.export.models import load_models as load

    edit = cfg.edit_config()
    sources = ModelSources.parse(manifest.models.source if manifest else cfg.models)
    return load(sources, sizes=len(edit.half_sizes), channels=edit.proj_channels, roi_size=edit.roi_size,
                proj_seed=edit.proj_seed)


def make_runner(name: str, cfg: BenchConfig, models, bundle: Path | None) -> Runner:
    """Build one backend; raises BackendUnavailableError with the reason when it cannot run here."""
    edit = cfg.edit_config()
    if name not in BACKEND_NAMES:
        raise BackendUnavailableError(f"backend {name!r} is unknown; expected one of {BACKEND_NAMES}")
    backend = engine_backend(name)
    if backend is Backend.TORCH_CUDA:
        from lredit.engine.runtimes.torch_cuda import TorchEngineOptions, torch_cuda_pipeline

        options = TorchEngineOptions.for_device(cfg.device, cfg.torch_precision, **TORCH_CUDA_VARIANTS[name])
        return _pipeline_runner(name, torch_cuda_pipeline(models, edit, options), options.precision.value)
    if backend is Backend.TORCH:
        from lredit.engine.runtimes.reference.torch_backend import reference_pipeline

        return _pipeline_runner(name, reference_pipeline(models, edit, cfg.device, _torch_dtype(cfg)), cfg.torch_precision)
    if name == AUTHORS:
        from .authors import AuthorsPipeline

        pipeline = AuthorsPipeline(models, edit, cfg.device, _torch_dtype(cfg))
        return _pipeline_runner(name, pipeline, cfg.torch_precision, extra_passes=cfg.authors_iterations)
    from lredit.engine.frontends.editor import Editor

    if bundle is None:
        raise BackendUnavailableError(f"{name} runs an exported bundle: pass --bundle or --models")
    try:
        editor = Editor.from_bundle(bundle, backend=backend, providers=ort_providers(cfg.device), config=edit)
    except LreditError as exc:
        raise BackendUnavailableError(str(exc)) from None
    return _pipeline_runner(name, editor.pipeline, editor.pipeline.manifest.precision.value)


def bench_image(size: int = 320) -> "np.ndarray":
    """A deterministic synthetic photo-like image (gradients, shapes, noise) when none is given."""
    rng = np.random.default_rng(1234)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([200 * x + 30, 180 * y + 40, 120 * (1 - x * y) + 60], axis=-1)
    disc = (x - 0.55) ** 2 + (y - 0.6) ** 2 < 0.04
    img[disc] = (220, 60, 50)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
