"""Diffusion schedulers in numpy: the tables (alphas_cumprod, config) come from the bundle's
manifest, written by diffusers at export; the update rules live here. Held to diffusers' `step`
by tests/test_schedulers.py.

Implemented: PNDM with skip_prk_steps (PLMS; SD 1.x inpainting's default) and DDIM (eta 0),
epsilon prediction.
"""

from __future__ import annotations

import numpy as np

from .errors import BundleError, InputError


class _Base:
    init_noise_sigma = 1.0

    def __init__(self, config: dict, alphas_cumprod):
        if config.get("prediction_type", "epsilon") != "epsilon":
            raise BundleError(f"scheduler prediction_type {config.get('prediction_type')!r} is not supported (epsilon only)")
        self.config = config
        self.train_steps = int(config.get("num_train_timesteps", 1000))
        self.alphas_cumprod = np.asarray(alphas_cumprod, dtype=np.float32)
        self.final_alpha_cumprod = np.float32(1.0) if config.get("set_alpha_to_one", False) else self.alphas_cumprod[0]
        self.steps = 0

    def _leading(self, steps: int) -> np.ndarray:
        spacing = self.config.get("timestep_spacing", "leading")
        if spacing != "leading":
            raise BundleError(f"timestep_spacing {spacing!r} is not supported (leading only)")
        ratio = self.train_steps // steps
        return (np.arange(0, steps) * ratio).round().astype(np.int64) + int(self.config.get("steps_offset", 0))

    def _alpha(self, t: int) -> np.float32:
        return self.alphas_cumprod[t] if t >= 0 else self.final_alpha_cumprod

    def scale_model_input(self, sample: np.ndarray, timestep) -> np.ndarray:
        return sample


class DDIMScheduler(_Base):
    def set_timesteps(self, steps: int) -> np.ndarray:
        if steps > self.train_steps:
            raise InputError(f"steps={steps} exceeds the scheduler's {self.train_steps} training steps")
        self.steps = steps
        self.timesteps = self._leading(steps)[::-1].copy()
        return self.timesteps

    def step(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        t = int(timestep)
        a_t, a_prev = self._alpha(t), self._alpha(t - self.train_steps // self.steps)
        b_t = np.float32(1) - a_t
        x0 = (sample - b_t ** np.float32(0.5) * model_output) / a_t ** np.float32(0.5)
        if self.config.get("clip_sample", False):
            r = np.float32(self.config.get("clip_sample_range", 1.0))
            x0 = np.clip(x0, -r, r)
        direction = (np.float32(1) - a_prev) ** np.float32(0.5) * model_output
        return (a_prev ** np.float32(0.5) * x0 + direction).astype(np.float32)


class PNDMScheduler(_Base):
    """PLMS (skip_prk_steps=True): linear multistep over the last 4 noise predictions."""

    def set_timesteps(self, steps: int) -> np.ndarray:
        if not self.config.get("skip_prk_steps", False):
            raise BundleError("PNDM with Runge-Kutta warm-up (skip_prk_steps=False) is not supported")
        self.steps = steps
        base = self._leading(steps)
        self.timesteps = np.concatenate([base[:-1], base[-2:-1], base[-1:]])[::-1].copy()
        self.ets: list[np.ndarray] = []
        self.counter = 0
        self.cur_sample = None
        return self.timesteps

    def step(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        ratio = self.train_steps // self.steps
        t = int(timestep)
        prev_t = t - ratio
        if self.counter != 1:
            self.ets = self.ets[-3:]
            self.ets.append(model_output)
        else:
            prev_t, t = t, t + ratio
        ets = self.ets
        if len(ets) == 1 and self.counter == 0:
            self.cur_sample = sample
        elif len(ets) == 1 and self.counter == 1:
            model_output = (model_output + ets[-1]) / 2
            sample, self.cur_sample = self.cur_sample, None
        elif len(ets) == 2:
            model_output = (3 * ets[-1] - ets[-2]) / 2
        elif len(ets) == 3:
            model_output = (23 * ets[-1] - 16 * ets[-2] + 5 * ets[-3]) / 12
        else:
            model_output = (1 / 24) * (55 * ets[-1] - 59 * ets[-2] + 37 * ets[-3] - 9 * ets[-4])
        self.counter += 1
        a_t, a_prev = self._alpha(t), self._alpha(prev_t)
        b_t, b_prev = np.float32(1) - a_t, np.float32(1) - a_prev
        sample_coeff = (a_prev / a_t) ** np.float32(0.5)
        denom = a_t * b_prev ** np.float32(0.5) + (a_t * b_t * a_prev) ** np.float32(0.5)
        return (sample_coeff * sample - (a_prev - a_t) * model_output / denom).astype(np.float32)


SCHEDULERS = {"PNDMScheduler": PNDMScheduler, "DDIMScheduler": DDIMScheduler}
NAMES = {"pndm": "PNDMScheduler", "ddim": "DDIMScheduler"}


def make_scheduler(name: str, config: dict, alphas_cumprod) -> _Base:
    """`name` is an EditConfig.scheduler value; 'model' = the class the model folder names."""
    class_name = config.get("_class_name", "PNDMScheduler") if name == "model" else NAMES.get(name)
    if class_name not in SCHEDULERS:
        raise InputError(
            f"scheduler {name!r} ({class_name}) is not available in the runtime; use one of "
            f"{['model', *NAMES]} or --backend torch"
        )
    overrides = {"skip_prk_steps": True} if class_name == "PNDMScheduler" else {}
    return SCHEDULERS[class_name]({**config, **overrides}, alphas_cumprod)
