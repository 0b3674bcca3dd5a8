"""The row-batched denoiser: every mode's inpainting loop, one row per candidate.

A row is one (anchor, size) inpaint, or one request's candidate: its mask latent, masked-image
latent, initial noise and its own text context (unconditional, conditional). With guidance the
UNet batch is 2 x rows, laid out [uncond rows, cond rows]; where that exceeds `max_batch` (the
bundle's profile or a memory cap) the rows run in chunks of the largest even batch allowed, each
chunk laid out the same way. Rows never mix: a row's result does not depend on its batch-mates
(within float summation order, <= 2 uint8 levels after decoding).

With sd-blend (a 4-channel text-to-image UNet, or forced over an inpainting one) the rows also
carry the source latent and a blend mask: after every step, outside the mask the latent is
replaced by the source latent noised to the level the sample has reached (the scheduler's
`noised`, with the row's own initial noise), so only the box is generated (Region-Aware
Diffusion's blending). A plain UNet's rows carry no mask or masked-image channels.

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

    mask_latents: object | None
    """[R, 1, h, w] 1 = repaint: the inpainting UNet's mask channel (None for a plain UNet)."""
    masked_latents: object | None
    """[R, C, h, w] VAE latent of the image with the box blanked (None for a plain UNet)."""
    noise: np.ndarray
    """[R, C, h, w] standard normal, from engine.noise.initial_noise per row."""
    context: object
    """[R, 2, T, D] (unconditional, conditional) text states with guidance, [R, 1, T, D] without."""
    source_latents: object | None = None
    """sd-blend: [R, C, h, w] VAE latent of the unmasked working image (None: no blending)."""
    blend_masks: object | None = None
    """sd-blend: [R, 1, h, w] 1 = generated: every latent cell the pixel box touches."""

    def __post_init__(self) -> None:
        if (self.mask_latents is None) != (self.masked_latents is None):
            raise ValueError("denoise rows carry both the mask and the masked-image latents, or neither")
        if (self.source_latents is None) != (self.blend_masks is None):
            raise ValueError("denoise rows carry both the source latents and the blend masks, or neither")
        if self.masked_latents is None and self.source_latents is None:
            raise ValueError("denoise rows need the inpainting channels, the blend inputs, or both")
        counts = {len(a) for a in self._arrays() if a is not None}
        if len(counts) != 1:
            raise ValueError(f"denoise rows disagree on the row count: {sorted(counts)}")

    def _arrays(self) -> tuple:
        return (self.mask_latents, self.masked_latents, self.noise, self.context, self.source_latents, self.blend_masks)

    @property
    def conditioned(self) -> bool:
        """The UNet takes the mask and masked-image channels (an inpainting UNet)."""
        return self.masked_latents is not None

    @property
    def blended(self) -> bool:
        return self.source_latents is not None

    def __len__(self) -> int:
        return len(self.noise)

    def take(self, rows) -> "DenoiseRows":
        rows = np.asarray(rows, dtype=np.int64)
        xp = array_module(self.context)
        index = xp.asarray(rows)
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return DenoiseRows(pick(self.mask_latents), pick(self.masked_latents), self.noise[rows], self.context[index],
                           pick(self.source_latents), pick(self.blend_masks))

    @staticmethod
    def join(parts: "list[DenoiseRows]") -> "DenoiseRows":
        """The rows of several requests, in order (they agree on conditioning and blending)."""
        xp = array_module(parts[0].context)

        def cat(name: str):
            values = [getattr(p, name) for p in parts]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                raise ValueError(f"denoise rows to join disagree on {name}")
            return (np if name == "noise" else xp).concatenate(values)

        return DenoiseRows(*(cat(f) for f in ("mask_latents", "masked_latents", "noise", "context", "source_latents", "blend_masks")))


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
                if self.rows.blended:
                    self.latents = self._blend(self.step_index)
            self.step_index += 1
            if self.on_step is not None:
                self.on_step(self.step_index, self.total_steps)
        return self.latents if self.step_index == self.total_steps else x0

    def _blend(self, index: int):
        """Inside the blend mask the generated latent, outside it the source noised to the level
        the sample has after step `index`."""
        xp = array_module(self.latents)
        rows = self.rows
        source = self.scheduler.noised(rows.source_latents, xp.asarray(rows.noise), index)
        m = rows.blend_masks
        return (m * self.latents + (np.float32(1) - m) * source).astype(np.float32)

    def _guided_eps(self, t):
        xp = array_module(self.latents)
        parts = [self._chunk_eps(sl, t) for sl in chunk_rows(len(self.rows), self.reps, self.max_batch)]
        return parts[0] if len(parts) == 1 else xp.concatenate(parts)

    def _chunk_eps(self, sl: slice, t):
        xp = array_module(self.latents)
        reps, n = self.reps, sl.stop - sl.start
        latents = self.scheduler.scale_model_input(self.latents[sl], t).astype(np.float32)
        if self.rows.conditioned:
            latents = xp.concatenate([latents, self.rows.mask_latents[sl], self.rows.masked_latents[sl]], axis=1)
        sample = xp.concatenate([latents] * reps)
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
