"""Diffusion schedulers in numpy: the tables (alphas_cumprod, config) come from the bundle's
manifest, written by diffusers at export; the update rules live here. Held to diffusers' `step`
by tests/test_schedulers.py over full schedules of 10, 25 and 50 steps.

Implemented, epsilon prediction only: PNDM with skip_prk_steps (PLMS; SD 1.x inpainting's
default), DDIM (eta 0), Euler (no churn) and DPM-Solver++ 2M (midpoint, lower-order final).
Each class keeps diffusers' default `timestep_spacing` when the config does not set one.
"""

from __future__ import annotations

import numpy as np

from lredit.config import SCHEDULER_CLASSES, SCHEDULER_OVERRIDES, SCHEDULERS
from lredit.errors import BundleError, InputError

F32 = np.float32


class _Base:
    init_noise_sigma = 1.0
    default_spacing = "leading"
    row_state: tuple[str, ...] = ()
    """Attributes holding per-row state (arrays, or lists of arrays, batch first): `select` slices them."""

    def __init__(self, config: dict, alphas_cumprod):
        if config.get("prediction_type", "epsilon") != "epsilon":
            raise BundleError(f"scheduler prediction_type {config.get('prediction_type')!r} is not supported (epsilon only)")
        self.config = config
        self.train_steps = int(config.get("num_train_timesteps", 1000))
        self.alphas_cumprod = np.asarray(alphas_cumprod, dtype=F32)
        self.final_alpha_cumprod = F32(1.0) if config.get("set_alpha_to_one", False) else self.alphas_cumprod[0]
        self.spacing = config.get("timestep_spacing") or self.default_spacing
        if self.spacing not in ("leading", "linspace", "trailing"):
            raise BundleError(f"timestep_spacing {self.spacing!r} is not supported (leading, linspace or trailing)")
        self.steps = 0

    def _check_steps(self, steps: int) -> None:
        if not 1 <= steps <= self.train_steps:
            raise InputError(f"steps={steps} must be between 1 and the scheduler's {self.train_steps} training steps")
        self.steps = steps

    def _leading(self, steps: int) -> np.ndarray:
        if self.spacing != "leading":
            raise BundleError(f"{type(self).__name__} supports timestep_spacing 'leading' only, not {self.spacing!r}")
        ratio = self.train_steps // steps
        return (np.arange(0, steps) * ratio).round().astype(np.int64) + int(self.config.get("steps_offset", 0))

    def _alpha(self, t: int) -> np.float32:
        return self.alphas_cumprod[t] if t >= 0 else self.final_alpha_cumprod

    def scale_model_input(self, sample: np.ndarray, timestep) -> np.ndarray:
        return sample

    def predict_x0(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        """The clean-latent estimate at `timestep` from an epsilon prediction (what `step` forms
        internally), for scoring partway through the schedule."""
        a_t = self._alpha(int(timestep))
        return ((sample - (F32(1) - a_t) ** F32(0.5) * model_output) / a_t ** F32(0.5)).astype(F32)

    def noised(self, x0: np.ndarray, noise: np.ndarray, index: int) -> np.ndarray:
        """`x0` noised to the level the sample has after step `index` of the schedule (the
        timestep that follows it; `x0` itself after the last step): sd-blend's source path."""
        if index + 1 >= len(self.timesteps):
            return x0.astype(F32)
        a = self.alphas_cumprod[int(self.timesteps[index + 1])]
        return (a ** F32(0.5) * x0 + (F32(1) - a) ** F32(0.5) * noise).astype(F32)

    def select(self, rows) -> None:
        """Keep only `rows` (indices into the batch) of every per-row state, so the next `step`
        runs on that sub-batch exactly as if only those rows had been run from the start."""
        rows = np.asarray(rows, dtype=np.int64)
        for name in self.row_state:
            value = getattr(self, name, None)
            if isinstance(value, list):
                setattr(self, name, [None if v is None else v[rows] for v in value])
            elif value is not None:
                setattr(self, name, value[rows])


class DDIMScheduler(_Base):
    def set_timesteps(self, steps: int) -> np.ndarray:
        self._check_steps(steps)
        self.timesteps = self._leading(steps)[::-1].copy()
        return self.timesteps

    def step(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        t = int(timestep)
        a_t, a_prev = self._alpha(t), self._alpha(t - self.train_steps // self.steps)
        b_t = F32(1) - a_t
        x0 = (sample - b_t ** F32(0.5) * model_output) / a_t ** F32(0.5)
        if self.config.get("clip_sample", False):
            r = F32(self.config.get("clip_sample_range", 1.0))
            x0 = np.clip(x0, -r, r)
        direction = (F32(1) - a_prev) ** F32(0.5) * model_output
        return (a_prev ** F32(0.5) * x0 + direction).astype(F32)


class PNDMScheduler(_Base):
    """PLMS (skip_prk_steps=True): linear multistep over the last 4 noise predictions."""

    row_state = ("ets", "cur_sample")

    def set_timesteps(self, steps: int) -> np.ndarray:
        if not self.config.get("skip_prk_steps", False):
            raise BundleError("PNDM with Runge-Kutta warm-up (skip_prk_steps=False) is not supported")
        self._check_steps(steps)
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
        b_t, b_prev = F32(1) - a_t, F32(1) - a_prev
        sample_coeff = (a_prev / a_t) ** F32(0.5)
        denom = a_t * b_prev ** F32(0.5) + (a_t * b_t * a_prev) ** F32(0.5)
        return (sample_coeff * sample - (a_prev - a_t) * model_output / denom).astype(F32)


class _SigmaScheduler(_Base):
    """Schedulers stepping over sigma = sqrt((1 - a) / a), interpolated at the chosen timesteps
    and ended by a zero sigma (diffusers' final_sigmas_type='zero')."""

    default_spacing = "linspace"

    def __init__(self, config: dict, alphas_cumprod):
        super().__init__(config, alphas_cumprod)
        for key in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "thresholding"):
            if config.get(key):
                raise BundleError(f"{type(self).__name__} with {key}=True is not supported")
        if config.get("final_sigmas_type", "zero") != "zero":
            raise BundleError(f"final_sigmas_type {config.get('final_sigmas_type')!r} is not supported (zero only)")

    def _sigmas_at(self, timesteps: np.ndarray) -> np.ndarray:
        table = ((F32(1) - self.alphas_cumprod) / self.alphas_cumprod) ** F32(0.5)
        sigmas = np.interp(timesteps.astype(np.float64), np.arange(len(table)), table.astype(np.float64))
        return np.concatenate([sigmas, [0.0]]).astype(F32)

    def noised(self, x0: np.ndarray, noise: np.ndarray, index: int) -> np.ndarray:
        """Variance-exploding samples: x0 + sigma * noise at the next step's sigma (0 at the end)."""
        return (x0 + self.sigmas[index + 1] * noise).astype(F32)

    def _index(self, timestep) -> int:
        hits = np.nonzero(self.timesteps == timestep)[0]
        if len(hits) == 0:
            raise InputError(f"timestep {timestep} is not in this schedule")
        return int(hits[0])


class EulerDiscreteScheduler(_SigmaScheduler):
    """Euler over the probability-flow ODE in sigma (s_churn = 0: deterministic)."""

    def set_timesteps(self, steps: int) -> np.ndarray:
        self._check_steps(steps)
        n = self.train_steps
        if self.spacing == "linspace":
            timesteps = np.linspace(0, n - 1, steps, dtype=F32)[::-1].copy()
        elif self.spacing == "leading":
            timesteps = self._leading(steps)[::-1].astype(F32)
        else:
            timesteps = np.arange(n, 0, -n / steps).round().astype(F32) - F32(1)
        if self.config.get("interpolation_type", "linear") != "linear":
            raise BundleError(f"Euler interpolation_type {self.config.get('interpolation_type')!r} is not supported")
        self.timesteps = timesteps
        self.sigmas = self._sigmas_at(timesteps)
        top = float(self.sigmas.max())
        self.init_noise_sigma = top if self.spacing in ("linspace", "trailing") else (top**2 + 1) ** 0.5
        return self.timesteps

    def scale_model_input(self, sample: np.ndarray, timestep) -> np.ndarray:
        sigma = self.sigmas[self._index(timestep)]
        return (sample / (sigma**2 + F32(1)) ** F32(0.5)).astype(F32)

    def predict_x0(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        return (sample - self.sigmas[self._index(timestep)] * model_output).astype(F32)

    def step(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        i = self._index(timestep)
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        x0 = sample - sigma * model_output
        derivative = (sample - x0) / sigma
        return (sample + derivative * (sigma_next - sigma)).astype(F32)


class DPMSolverMultistepScheduler(_SigmaScheduler):
    """DPM-Solver++ (data prediction), order 2, midpoint; first order at the start and at the
    zero final sigma."""

    row_state = ("previous",)

    def __init__(self, config: dict, alphas_cumprod):
        super().__init__(config, alphas_cumprod)
        wanted = {"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint"}
        for key, value in wanted.items():
            if config.get(key, value) != value:
                raise BundleError(f"DPMSolverMultistepScheduler {key}={config.get(key)!r} is not supported ({value!r} only)")
        if np.isfinite(config.get("lambda_min_clipped", -np.inf)):
            raise BundleError("DPMSolverMultistepScheduler with lambda_min_clipped is not supported")

    def set_timesteps(self, steps: int) -> np.ndarray:
        self._check_steps(steps)
        n = self.train_steps
        if self.spacing == "linspace":
            timesteps = np.linspace(0, n - 1, steps + 1).round()[::-1][:-1]
        elif self.spacing == "leading":
            ratio = n // (steps + 1)
            timesteps = (np.arange(0, steps + 1) * ratio).round()[::-1][:-1] + int(self.config.get("steps_offset", 0))
        else:
            timesteps = np.arange(n, 0, -n / steps).round() - 1
        self.timesteps = timesteps.astype(np.int64).copy()
        self.sigmas = self._sigmas_at(self.timesteps)
        self.previous: np.ndarray | None = None
        self.lower_order_nums = 0
        return self.timesteps

    @staticmethod
    def _alpha_sigma_lambda(sigma):
        alpha = F32(1) / (sigma**2 + F32(1)) ** F32(0.5)
        sigma_t = sigma * alpha
        with np.errstate(divide="ignore"):  # sigma 0 at the end: lambda = +inf, exp(-h) = 0
            return alpha, sigma_t, np.log(alpha) - np.log(sigma_t)

    def noised(self, x0: np.ndarray, noise: np.ndarray, index: int) -> np.ndarray:
        """DPM-Solver's samples are variance-preserving: alpha_t x0 + sigma_t noise at the next sigma."""
        alpha, sigma, _ = self._alpha_sigma_lambda(self.sigmas[index + 1])
        return (alpha * x0 + sigma * noise).astype(F32)

    def predict_x0(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        alpha, sigma, _ = self._alpha_sigma_lambda(self.sigmas[self._index(timestep)])
        return ((sample - sigma * model_output) / alpha).astype(F32)

    def step(self, model_output: np.ndarray, timestep, sample: np.ndarray) -> np.ndarray:
        i = self._index(timestep)
        count = len(self.timesteps)
        # First order at the start and at the zero final sigma. diffusers' 'lower order second'
        # only drops order 3 to 2, so it changes nothing at order 2.
        lower_final = i == count - 1
        alpha_s0, sigma_s0, lambda_s0 = self._alpha_sigma_lambda(self.sigmas[i])
        alpha_t, sigma_t, lambda_t = self._alpha_sigma_lambda(self.sigmas[i + 1])
        x0 = (sample - sigma_s0 * model_output) / alpha_s0
        h = lambda_t - lambda_s0
        decay = np.exp(-h) - F32(1)
        if self.lower_order_nums < 1 or lower_final:
            out = (sigma_t / sigma_s0) * sample - (alpha_t * decay) * x0
        else:
            _, _, lambda_s1 = self._alpha_sigma_lambda(self.sigmas[i - 1])
            r0 = (lambda_s0 - lambda_s1) / h
            d1 = (F32(1) / r0) * (x0 - self.previous)
            out = (sigma_t / sigma_s0) * sample - (alpha_t * decay) * x0 - F32(0.5) * (alpha_t * decay) * d1
        self.previous = x0
        self.lower_order_nums = min(self.lower_order_nums + 1, 2)
        return out.astype(F32)


IMPLEMENTED = {
    cls.__name__: cls for cls in (PNDMScheduler, DDIMScheduler, EulerDiscreteScheduler, DPMSolverMultistepScheduler)
}


def make_scheduler(name: str, config: dict, alphas_cumprod) -> _Base:
    """`name` is an EditConfig.scheduler value; 'model' = the class the model folder names."""
    class_name = config.get("_class_name", "PNDMScheduler") if name == "model" else SCHEDULER_CLASSES.get(name)
    if class_name not in IMPLEMENTED:
        raise InputError(
            f"scheduler {name!r} ({class_name}) is not available in the runtime; use one of "
            f"{list(SCHEDULERS)} or --backend torch"
        )
    return IMPLEMENTED[class_name]({**config, **SCHEDULER_OVERRIDES.get(class_name, {})}, alphas_cumprod)


def max_steps(name: str, config: dict, table_length: int) -> int | None:
    """The most steps whose timesteps all index a table of `table_length` alphas (leading spacing
    with steps_offset 1 reaches timestep 1000 at 1000 steps: one past SD's table), or None for a
    scheduler class the numpy runtime does not implement (diffusers then decides)."""
    class_name = config.get("_class_name", "PNDMScheduler") if name == "model" else SCHEDULER_CLASSES.get(name)
    if class_name not in IMPLEMENTED or table_length < 1:
        return None if class_name not in IMPLEMENTED else 0
    scheduler = IMPLEMENTED[class_name]({**config, **SCHEDULER_OVERRIDES.get(class_name, {})}, np.linspace(0.99, 0.01, table_length))
    for steps in range(min(scheduler.train_steps, table_length), 0, -1):
        timesteps = scheduler.set_timesteps(steps)
        if 0 <= int(np.min(timesteps)) and int(np.max(timesteps)) < table_length:
            return steps
    return 0
