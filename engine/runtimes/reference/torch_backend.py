"""The torch backend: the reference. Each graph is its export wrapper run eagerly in torch, and
the scheduler is diffusers' own, so the numpy pipeline around them is checked against diffusers."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from lredit.config import EDIT_FIELDS, EditConfig
from lredit.engine.core.pipeline import EditPipeline, PipelineAssets
from lredit.engine.core.sessions import Scheduler
from lredit.export import wrappers
from lredit.export.diffusers_schedulers import diffusers_scheduler
from lredit.export.models import ModelSet, ModelSources, load_models
from lredit.export.rgn import rgn_params
from lredit.graphs import GRAPH_OUTPUTS
from lredit.kernels import roi_pool_ref


class TorchSession:
    """Runs one wrapper module; float inputs are cast to the session dtype, outputs to float32."""

    def __init__(self, module: torch.nn.Module, input_names, output_names, device="cpu", dtype=torch.float32):
        self.module = module.to(device=device, dtype=dtype).eval()
        self.input_names, self.output_names = tuple(input_names), tuple(output_names)
        self.device, self.dtype = torch.device(device), dtype

    def _tensor(self, value: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    @torch.inference_mode()
    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.module(*(self._tensor(feeds[name]) for name in self.input_names))
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return {name: out.float().cpu().numpy() for name, out in zip(self.output_names, outputs)}


class DiffusersScheduler:
    """A diffusers scheduler behind the numpy Scheduler protocol."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    @property
    def init_noise_sigma(self) -> float:
        return float(self.scheduler.init_noise_sigma)

    def set_timesteps(self, steps: int) -> np.ndarray:
        self.scheduler.set_timesteps(steps)
        self._timesteps = self.scheduler.timesteps
        return self._timesteps.cpu().numpy()

    def _t(self, timestep):
        # diffusers looks steps up by value in its own timesteps tensor: pass its element.
        index = int(np.nonzero(self._timesteps.cpu().numpy() == timestep)[0][0])
        return self._timesteps[index]

    def scale_model_input(self, sample: np.ndarray, timestep) -> np.ndarray:
        return self.scheduler.scale_model_input(torch.from_numpy(sample), self._t(timestep)).numpy()

    def step(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        out = self.scheduler.step(torch.from_numpy(model_output), self._t(timestep), torch.from_numpy(sample))
        return out.prev_sample.numpy()

    def predict_x0(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        """diffusers' own x0 formula per class (Euler over sigma, DPM-Solver++ over alpha_t and
        sigma_t, PNDM/DDIM over alphas_cumprod), from its own tables."""
        s, eps, x = self.scheduler, torch.from_numpy(model_output), torch.from_numpy(sample)
        if hasattr(s, "sigmas") and hasattr(s, "_sigma_to_alpha_sigma_t"):  # DPM-Solver++
            alpha_t, sigma_t = s._sigma_to_alpha_sigma_t(s.sigmas[s.index_for_timestep(self._t(timestep))])
            return ((x - sigma_t * eps) / alpha_t).float().numpy()
        if hasattr(s, "sigmas"):  # Euler
            return (x - s.sigmas[s.index_for_timestep(self._t(timestep))] * eps).float().numpy()
        a_t = s.alphas_cumprod[int(timestep)]
        return ((x - (1 - a_t) ** 0.5 * eps) / a_t**0.5).float().numpy()

    def noised(self, x0: np.ndarray, noise: np.ndarray, index: int) -> np.ndarray:
        """diffusers' own add_noise at the timestep after step `index` (x0 after the last)."""
        if index + 1 >= len(self._timesteps):
            return np.asarray(x0, dtype=np.float32)
        t = self._timesteps[index + 1 : index + 2].expand(len(x0))
        return self.scheduler.add_noise(torch.from_numpy(np.array(x0)), torch.from_numpy(np.array(noise)), t).float().numpy()

    def select(self, rows) -> None:
        """Slice diffusers' per-row history (PNDM's ets and cur_sample, DPM-Solver's
        model_outputs) to `rows`."""
        index = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        for name in ("ets", "model_outputs"):
            if isinstance(getattr(self.scheduler, name, None), list):
                setattr(self.scheduler, name, [None if v is None else v[index] for v in getattr(self.scheduler, name)])
        if isinstance(getattr(self.scheduler, "cur_sample", None), torch.Tensor):
            self.scheduler.cur_sample = self.scheduler.cur_sample[index]


def torch_sessions(models: ModelSet, config: EditConfig, device="cpu", dtype=torch.float32) -> dict[str, TorchSession]:
    """One session per graph, with the same names as the exported graphs."""
    fp32 = torch.float32
    return {
        "dino": TorchSession(wrappers.DinoGraph(models.dino, config.dino_size), ["pixels"], GRAPH_OUTPUTS["dino"], device, dtype),
        # The RGN is tiny and its argmax decides boxes: it stays fp32 on every backend.
        "rgn": TorchSession(wrappers.RgnGraph(models.region_net), ["pooled"], GRAPH_OUTPUTS["rgn"], device, fp32),
        "clip_text": TorchSession(wrappers.ClipTextGraph(models.clip), ["input_ids"], GRAPH_OUTPUTS["clip_text"], device, dtype),
        "clip_vision": TorchSession(wrappers.ClipVisionGraph(models.clip), ["pixels"], GRAPH_OUTPUTS["clip_vision"], device, dtype),
        "sd_text": TorchSession(wrappers.SdTextGraph(models.sd_text_encoder), ["input_ids"], GRAPH_OUTPUTS["sd_text"], device, dtype),
        "unet": TorchSession(
            wrappers.UnetGraph(models.unet), ["sample", "timestep", "encoder_hidden_states"], GRAPH_OUTPUTS["unet"], device, dtype
        ),
        "vae_encoder": TorchSession(wrappers.VaeEncoderGraph(models.vae), ["images"], GRAPH_OUTPUTS["vae_encoder"], device, dtype),
        "vae_decoder": TorchSession(wrappers.VaeDecoderGraph(models.vae), ["latents"], GRAPH_OUTPUTS["vae_decoder"], device, dtype),
    }


def model_assets(models: ModelSet, make_scheduler: Callable[[str], Scheduler] | None = None,
                 roi_pool: Callable = roi_pool_ref.roi_pool_anchors) -> PipelineAssets:
    """Everything besides the graphs, read off the torch models; the scheduler is diffusers' own
    unless `make_scheduler` says otherwise (the torch-CUDA path runs the engine's)."""
    weight, bias = models.region_net.projection_arrays()
    return PipelineAssets(
        clip_tokenizer=models.clip_tokenizer,
        sd_tokenizer=models.sd_tokenizer,
        projection_weight=weight,
        projection_bias=bias,
        make_scheduler=make_scheduler or (lambda name: DiffusersScheduler(diffusers_scheduler(models.scheduler_config, name))),
        random_weights=models.random_weights,
        sources=dict(models.sources),
        latent_channels=int(models.vae.config.latent_channels),
        decoder_crop_min=1,  # a torch VAE decodes any latent size
        unet_channels=int(models.unet.config.in_channels),
        vae_scale_factor=models.vae_scale_factor,
        clip_image_size=int(models.clip.config.vision_config.image_size),
        roi_pool=roi_pool,
        rgn=rgn_params(models.region_net),
        notes=tuple(models.warnings),
    )


def reference_pipeline(models: ModelSet, config: EditConfig | None = None, device="cpu", dtype=torch.float32) -> EditPipeline:
    """The torch reference: torch graphs, diffusers schedulers, the shared numpy stages."""
    config = (config or EditConfig()).validated()
    assets = model_assets(models)  # read off the models before the sessions move and cast them
    return EditPipeline(torch_sessions(models, config, device, dtype), assets, config)


def load_model_set(models: str, config: EditConfig, **families) -> ModelSet:
    """The torch models for `models` (a preset name or a models folder; `families` overrides
    single families: dino, clip, sd, rgn folders or files), shaped by `config`'s RGN geometry."""
    sources = ModelSources.parse(models, **{k: v for k, v in families.items() if v is not None})
    return load_models(sources, sizes=len(config.half_sizes), channels=config.proj_channels,
                       roi_size=config.roi_size, proj_seed=config.proj_seed)


def load_reference(models: str, config: EditConfig, device="cpu", dtype=None, **families) -> EditPipeline:
    """The torch reference for `models` (see load_model_set). fp16 on CUDA unless `dtype` says."""
    if dtype is None:
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    return reference_pipeline(load_model_set(models, config, **families), config, device=device, dtype=dtype)


def models_settings(models: str) -> dict:
    """The EditConfig fields a models folder's geometry.json sets ({} for presets and folders
    without one; a folder that does not exist is left for loading to name)."""
    from lredit.errors import LreditError

    try:
        sources = ModelSources.parse(models)
    except LreditError:
        return {}
    return {k: v for k, v in sources.geometry().items() if k in EDIT_FIELDS}


def scheduler_config_of(models: str, sd=None) -> dict | None:
    """The scheduler config `load_reference(models, sd=sd)` would use, read without loading any
    weights (so lr-edit checks --steps first); None when the folder cannot say (loading names why)."""
    import json

    from lredit.errors import LreditError
    from lredit.export.models import SD15_SCHEDULER

    try:
        sources = ModelSources.parse(models, **({"sd": sd} if sd is not None else {}))
        if sources.preset is not None:
            return dict(SD15_SCHEDULER)
        return json.loads((sources.folder("sd") / "scheduler" / "scheduler_config.json").read_text())
    except (LreditError, OSError, ValueError, RecursionError):
        return None
