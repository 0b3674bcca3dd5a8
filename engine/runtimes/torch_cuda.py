"""The torch-CUDA engine path: the engine's own pipeline (its numpy schedulers, row-batched
denoiser, region modes and ranking) on torch sessions. It needs no exported bundle, TensorRT or
onnxruntime-gpu: what a machine with torch, CuPy and NVRTC has is enough.

On a CUDA device (the defaults of `TorchEngineOptions.for_device`):
- fp16 weights for the pixel graphs (UNet, VAE, SD text encoder: nearly all of the compute); the
  graphs that decide the boxes and the ranking (DINO, RGN, CLIP) stay fp32;
- channels-last UNet and VAE (NHWC convolutions are the tensor cores' layout);
- SDPA attention in the UNet and VAE (diffusers' AttnProcessor2_0; transformers' CLIP uses sdpa
  by default; DINO stays eager: its saliency reads the attention maps);
- tensors stay on the device between stages: CuPy arrays in and out through DLPack (no copy), so
  encode -> denoise -> decode never visit the host (the scheduler's update rule runs in CuPy);
- the UNet call replayed from a CUDA graph per row count (graph_replay.py), switchable;
- torch.compile of the UNet, switchable (off by default: minutes of compiling per row count);
- ROI pooling through the fused CUDA kernel (kernels/loader.py).
On the CPU it runs fp32 with every switch off, through the same code: CI holds it to the torch
reference's edit (tests/engine/runtimes/test_torch_cuda.py).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import torch

from lredit.config import EditConfig, Precision
from lredit.engine.core.pipeline import EditPipeline
from lredit.engine.ops.arrays import on_device
from lredit.engine.ops.schedulers import make_scheduler
from lredit.engine.runtimes.graph_replay import GraphedCall, cuda_graph_capture
from lredit.engine.runtimes.reference.torch_backend import load_model_set, model_assets
from lredit.errors import BackendUnavailableError, InputError
from lredit.export import wrappers
from lredit.export.diffusers_schedulers import diffusers_scheduler
from lredit.export.models import ModelSet
from lredit.kernels.loader import roi_pooler

log = logging.getLogger(__name__)

PIXEL_GRAPHS = ("sd_text", "unet", "vae_encoder", "vae_decoder")
"""Graphs run at the options' precision; the others (dino, rgn, clip_*) always run fp32."""
CONV_GRAPHS = ("unet", "vae_encoder", "vae_decoder")
"""Graphs that get channels-last weights and inputs."""


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


@dataclass(frozen=True)
class TorchEngineOptions:
    """How the torch-CUDA path runs its graphs. Each switch is measured by lr-bench
    (engine-torch-cuda, -eager, -compile)."""

    device: str = "cpu"
    precision: Precision = Precision.FP32
    """fp16: the pixel graphs' weights and activations (CUDA only). About half the UNet time of
    fp32 on tensor cores; pixels move by a few uint8 levels, the boxes not at all."""
    cuda_graphs: bool = False
    """Replay the UNet call from a CUDA graph per row count: removes the per-kernel launch cost
    (large at small K); each new row count costs a capture (about three eager calls)."""
    compile: bool = False
    """torch.compile the UNet (inductor): faster kernels, minutes of compiling per row count."""
    channels_last: bool = False
    """NHWC UNet and VAE: the layout cuDNN's fp16 tensor-core convolutions run in."""

    @classmethod
    def for_device(cls, device: str = "cpu", precision: Precision | str | None = None, **switches) -> "TorchEngineOptions":
        """What pays on `device`: on CUDA fp16, CUDA graphs and channels-last; on the CPU fp32 and
        every switch off. `switches` (None = that default) override single fields."""
        cuda = is_cuda(device)
        fields = dict(device=str(device), precision=Precision.FP16 if cuda else Precision.FP32, cuda_graphs=cuda,
                      channels_last=cuda)
        if precision is not None:
            fields["precision"] = Precision(precision)
        fields.update({name: value for name, value in switches.items() if value is not None})
        return cls(**fields).validated()

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision(self.precision))  # "fp16" as given by a CLI

    def validated(self) -> "TorchEngineOptions":
        problems = []
        if self.precision is Precision.FP16 and not is_cuda(self.device):
            problems.append(f"precision fp16 needs a CUDA device (device={self.device!r}); use fp32 on the CPU")
        if self.cuda_graphs and not is_cuda(self.device):
            problems.append(f"cuda_graphs needs a CUDA device (device={self.device!r})")
        if problems:
            raise InputError("torch-cuda options: " + "; ".join(problems))
        return self

    def replace(self, **changes) -> "TorchEngineOptions":
        return replace(self, **changes).validated()

    @property
    def dtype(self) -> torch.dtype:
        return torch.float16 if self.precision is Precision.FP16 else torch.float32


class DeviceSession:
    """One wrapper module on a torch device. Inputs may be numpy or CuPy arrays; with `resident`
    (the default on CUDA) outputs are CuPy arrays sharing the tensor's memory (DLPack), else
    numpy. Float inputs are cast to the session dtype, float outputs widened to float32."""

    def __init__(self, module: torch.nn.Module, input_names, output_names, device: str, dtype: torch.dtype,
                 channels_last: bool = False, resident: bool | None = None):
        self.module = module
        self.call = module
        """What run() calls: the module, or its compiled / graph-replayed form."""
        self.input_names, self.output_names = tuple(input_names), tuple(output_names)
        self.device, self.dtype, self.channels_last = torch.device(device), dtype, channels_last
        self.resident = self.device.type == "cuda" if resident is None else resident
        self._cupy = _cupy() if self.resident else None

    def _tensor(self, value) -> torch.Tensor:
        if on_device(value):
            tensor = torch.from_dlpack(value).to(self.device)  # same memory on the same device
        else:
            tensor = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
        if tensor.is_floating_point():
            tensor = tensor.to(self.dtype)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def _array(self, tensor: torch.Tensor):
        tensor = (tensor.float() if tensor.is_floating_point() else tensor).contiguous()
        return self._cupy.from_dlpack(tensor) if self.resident else tensor.cpu().numpy()

    def run(self, feeds: Mapping[str, object]) -> dict[str, object]:
        with torch.inference_mode():
            args = [self._tensor(feeds[name]) for name in self.input_names]
            outputs = self.call(*args)
            outputs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
            return {name: self._array(out) for name, out in zip(self.output_names, outputs)}


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(f"the torch-cuda backend keeps tensors on the GPU with CuPy, which is missing ({exc}); "
                                      "pip install cupy-cuda12x (or the build for your CUDA)") from None
    return cupy


def _own_copy(module: torch.nn.Module, options: TorchEngineOptions, dtype: torch.dtype, channels_last: bool) -> torch.nn.Module:
    """A copy on the device: converting it (fp16, channels-last, attention) never changes a model
    another backend in this process holds."""
    module = copy.deepcopy(module).to(device=options.device).eval()
    if any(p.dtype != dtype for p in module.parameters()):  # diffusers warns on every dtype cast, even a no-op
        module = module.to(dtype=dtype)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    if hasattr(module, "set_attn_processor"):  # diffusers' UNet and VAE: SDPA, whatever they were given
        from diffusers.models.attention_processor import AttnProcessor2_0

        module.set_attn_processor(AttnProcessor2_0())
    return module


def device_sessions(models: ModelSet, config: EditConfig, options: TorchEngineOptions) -> dict[str, DeviceSession]:
    """One session per graph (the exported graphs' names), each on its own copy of the weights."""
    fp32, pixel = torch.float32, options.dtype
    nhwc = options.channels_last
    dino = _own_copy(models.dino, options, fp32, False)
    clip = _own_copy(models.clip, options, fp32, False)
    text = _own_copy(models.sd_text_encoder, options, pixel, False)
    unet = _own_copy(models.unet, options, pixel, nhwc)
    vae = _own_copy(models.vae, options, pixel, nhwc)
    rgn = _own_copy(models.region_net, options, fp32, False)

    def session(module, inputs, outputs, dtype, channels_last=False):
        return DeviceSession(module, inputs, outputs, options.device, dtype, channels_last)

    sessions = {
        "dino": session(wrappers.DinoGraph(dino, config.dino_size), ["pixels"], ["features", "saliency"], fp32),
        "rgn": session(wrappers.RgnGraph(rgn), ["pooled"], ["log_probs"], fp32),
        "clip_text": session(wrappers.ClipTextGraph(clip), ["input_ids"], ["text_embeds"], fp32),
        "clip_vision": session(wrappers.ClipVisionGraph(clip), ["pixels"], ["image_embeds", "tokens"], fp32),
        "sd_text": session(wrappers.SdTextGraph(text), ["input_ids"], ["hidden_states"], pixel),
        "unet": session(wrappers.UnetGraph(unet), ["sample", "timestep", "encoder_hidden_states"], ["noise_pred"], pixel, nhwc),
        "vae_encoder": session(wrappers.VaeEncoderGraph(vae), ["images"], ["latents"], pixel, nhwc),
        "vae_decoder": session(wrappers.VaeDecoderGraph(vae), ["latents"], ["images"], pixel, nhwc),
    }
    _speed_up_unet(sessions["unet"], options)
    return sessions


def _speed_up_unet(unet: DeviceSession, options: TorchEngineOptions) -> None:
    """torch.compile and/or graph replay around the UNet call, as the options say."""
    call = unet.module
    if options.compile:
        call = torch.compile(call, dynamic=False)
    if options.cuda_graphs:
        call = GraphedCall(call, cuda_graph_capture(), max_graphs=16)  # pruned search at K=1 and K=9: ~10 row counts
    unet.call = call


def engine_schedulers(scheduler_config: dict):
    """EditConfig.scheduler name -> the engine's numpy scheduler over diffusers' alphas (what a
    bundle's manifest carries), so the update rule runs in CuPy on the device."""
    alphas = diffusers_scheduler(scheduler_config, "model").alphas_cumprod.numpy()
    return lambda name: make_scheduler(name, dict(scheduler_config), alphas)


def torch_cuda_pipeline(models: ModelSet, config: EditConfig | None = None,
                        options: TorchEngineOptions | None = None) -> EditPipeline:
    """The engine's pipeline on torch sessions, as `options` say (default: the CPU, fp32)."""
    config = (config or EditConfig()).validated()
    options = (options or TorchEngineOptions()).validated()
    log.info("torch-cuda: %s", options)
    assets = model_assets(models, engine_schedulers(models.scheduler_config), roi_pooler(prefer_gpu=is_cuda(options.device)))
    return EditPipeline(device_sessions(models, config, options), assets, config)


def load_torch_cuda(models: str, config: EditConfig, options: TorchEngineOptions, **families) -> EditPipeline:
    """torch_cuda_pipeline over the models `models` names (a preset or a folder; see load_model_set)."""
    return torch_cuda_pipeline(load_model_set(models, config, **families), config, options)
