"""The row-batched denoiser: every mode's inpainting loop, one row per candidate.

A row is one (anchor, size) inpaint, or one request's candidate: its mask latent, masked-image
latent, initial noise and its own text context (unconditional, conditional). With guidance the
UNet batch is 2 x rows, laid out [uncond rows, cond rows]; where that exceeds `max_batch` (the
bundle's profile or a memory cap) the rows run in chunks of the largest even batch allowed, each
chunk laid out the same way. Rows never mix: a row's result does not depend on its batch-mates
(within float summation order, <= 2 uint8 levels after decoding).

The loop can stop at any step, hand out the x0 prediction of the last step (for scoring), drop
rows (`keep`: the scheduler's per-row history is sliced with them) and continue.

    rows = DenoiseRows(mask_latents, masked_latents, noise, context)
    den = RowDenoiser(unet, scheduler, steps=25, guidance=7.5, max_batch=32)
    den.start(rows)
    x0 = den.run(until=8)       # steps 0..7; x0 predicted at step 7
    den.keep([0, 3, 5])          # continue three rows
    latents = den.run()          # to the end
    den.unet_rows                # UNet rows run so far
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lredit.engine.core.sessions import Scheduler
from lredit.engine.ops.arrays import array_module
from lredit.engine.ops.timing import StageTimer

UnetRun = Callable[..., object]
"""(sample, timestep, encoder_hidden_states) keyword arrays -> noise_pred [B, C, h, w]."""


@dataclass(frozen=True)
class DenoiseRows:
    """Per-row inputs, batch first (numpy or CuPy)."""

    mask_latents: object
    """[R, 1, h, w] 1 = repaint."""
    masked_latents: object
    """[R, C, h, w] VAE latent of the image with the box blanked."""
    noise: np.ndarray
    """[R, C, h, w] standard normal, from engine.noise.initial_noise per row."""
    context: object
    """[R, 2, T, D] (unconditional, conditional) text states with guidance, [R, 1, T, D] without."""

    def __post_init__(self) -> None:
        counts = {len(self.mask_latents), len(self.masked_latents), len(self.noise), len(self.context)}
        if len(counts) != 1:
            raise ValueError(f"denoise rows disagree on the row count: {sorted(counts)}")

    def __len__(self) -> int:
        return len(self.noise)

    def take(self, rows) -> "DenoiseRows":
        rows = np.asarray(rows, dtype=np.int64)
        xp = array_module(self.masked_latents)
        index = xp.asarray(rows)
        return DenoiseRows(self.mask_latents[index], self.masked_latents[index], self.noise[rows], self.context[index])


def chunk_rows(rows: int, reps: int, max_batch: int | None) -> list[slice]:
    """Row slices whose UNet batch (reps x rows) fits max_batch (None/0 = one chunk)."""
    per = rows if not max_batch else max(1, max_batch // reps)
    if max_batch and max_batch < reps:
        raise ValueError(f"max UNet batch {max_batch} cannot hold one row with guidance ({reps} UNet rows)")
    return [slice(lo, min(lo + per, rows)) for lo in range(0, rows, per)]


class RowDenoiser:
    def __init__(
        self,
        unet: UnetRun,
        scheduler: Scheduler,
        *,
        steps: int,
        guidance: float | np.ndarray,
        max_batch: int | None = None,
        timer: StageTimer | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ):
        self.unet, self.scheduler = unet, scheduler
        self.timesteps = scheduler.set_timesteps(steps)
        self.guidance = np.asarray(guidance, dtype=np.float32)
        """One scale, or one per row (rows of several requests: Editor.edit_batch)."""
        self.reps = 2 if float(self.guidance.max()) > 1.0 else 1
        self.max_batch = max_batch or None
        self.timer = timer or StageTimer()
        self.on_step = on_step
        self.step_index = 0
        self.unet_rows = 0
        self.rows: DenoiseRows | None = None
        self.latents = None

    @property
    def total_steps(self) -> int:
        """UNet calls of the schedule (PNDM's PLMS runs steps + 1)."""
        return len(self.timesteps)

    def start(self, rows: DenoiseRows) -> None:
        if rows.context.shape[1] != self.reps:
            raise ValueError(f"context has {rows.context.shape[1]} texts per row; guidance {self.guidance} needs {self.reps}")
        xp = array_module(rows.masked_latents)
        self.rows = rows
        self.latents = xp.asarray((rows.noise * np.float32(self.scheduler.init_noise_sigma)).astype(np.float32))
        self.step_index, self.unet_rows = 0, 0

    def keep(self, rows) -> None:
        """Continue with these rows only (indices into the current rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        self.rows = self.rows.take(rows)
        self.latents = self.latents[array_module(self.latents).asarray(rows)]
        if self.guidance.ndim:
            self.guidance = self.guidance[rows]
        self.scheduler.select(rows)

    def run(self, until: int | None = None):
        """Run steps step_index..until-1 (default: to the end). Returns the x0 prediction of the
        last step run (the final latents when the schedule is done)."""
        until = self.total_steps if until is None else until
        if not self.step_index <= until <= self.total_steps:
            raise ValueError(f"run(until={until}) outside steps {self.step_index}..{self.total_steps}")
        x0 = None
        while self.step_index < until:
            t = self.timesteps[self.step_index]
            with self.timer.stage("denoise_step"):
                eps = self._guided_eps(t)
                if self.step_index == until - 1 and until < self.total_steps:
                    x0 = self.scheduler.predict_x0(eps, t, self.latents).astype(np.float32)
                self.latents = self.scheduler.step(eps, t, self.latents).astype(np.float32)
            self.step_index += 1
            if self.on_step is not None:
                self.on_step(self.step_index, self.total_steps)
        return self.latents if self.step_index == self.total_steps else x0

    def _guided_eps(self, t):
        xp = array_module(self.latents)
        parts = [self._chunk_eps(sl, t) for sl in chunk_rows(len(self.rows), self.reps, self.max_batch)]
        return parts[0] if len(parts) == 1 else xp.concatenate(parts)

    def _chunk_eps(self, sl: slice, t):
        xp = array_module(self.latents)
        reps, n = self.reps, sl.stop - sl.start
        latents = self.scheduler.scale_model_input(self.latents[sl], t).astype(np.float32)
        extra = xp.concatenate([self.rows.mask_latents[sl], self.rows.masked_latents[sl]], axis=1)
        sample = xp.concatenate([xp.concatenate([latents, extra], axis=1)] * reps)
        context = xp.concatenate([self.rows.context[sl, j] for j in range(reps)])  # [uncond.., cond..]
        eps = self.unet(
            sample=sample.astype(np.float32),
            timestep=xp.full((reps * n,), t, dtype=np.float32),
            encoder_hidden_states=context,
        )
        self.unet_rows += reps * n
        if reps == 2:
            uncond, cond = eps[:n], eps[n:]
            scale = np.float32(self.guidance) if not self.guidance.ndim else xp.asarray(self.guidance[sl])[:, None, None, None]
            eps = uncond + scale * (cond - uncond)
        return eps.astype(np.float32)
