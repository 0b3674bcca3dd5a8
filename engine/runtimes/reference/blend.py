"""sd-blend's reference loop, in torch on diffusers' own UNet and scheduler: what the engine's
row-batched denoiser does for blended rows (engine/core/denoise.py), written out plainly so
the two can be held to each other (tests/engine/core/test_sd_blend.py).

After every scheduler step, outside the blend mask the latent becomes the source latent noised
by the scheduler's `add_noise` to the timestep that follows (the source itself after the last
step), with the row's initial noise: Region-Aware Diffusion's blending (Huang et al. 2023).
"""

from __future__ import annotations

import torch


@torch.inference_mode()
def blend_reference(unet, scheduler, *, source: torch.Tensor, blend_mask: torch.Tensor, noise: torch.Tensor,
                    context: torch.Tensor, steps: int, guidance: float,
                    conditioning: torch.Tensor | None = None) -> torch.Tensor:
    """Final latents [R, C, h, w]. `source` [R, C, h, w] the unmasked image's latent, `blend_mask`
    [R, 1, h, w] (1 = generated), `noise` [R, C, h, w], `context` [R, 2 or 1, T, D] (uncond, cond),
    `conditioning` [R, 1 + C, h, w] (mask, masked-image latent) for an inpainting UNet, else None."""
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    reps = 2 if guidance > 1.0 else 1
    latents = noise * scheduler.init_noise_sigma
    for i, t in enumerate(timesteps):
        sample = scheduler.scale_model_input(latents, t)
        if conditioning is not None:
            sample = torch.cat([sample, conditioning], dim=1)
        texts = torch.cat([context[:, j] for j in range(reps)])
        eps = unet(torch.cat([sample] * reps), t.expand(reps * len(sample)), encoder_hidden_states=texts).sample
        if reps == 2:
            uncond, cond = eps.chunk(2)
            eps = uncond + guidance * (cond - uncond)
        latents = scheduler.step(eps, t, latents).prev_sample
        if i + 1 < len(timesteps):
            outside = scheduler.add_noise(source, noise, timesteps[i + 1 : i + 2].expand(len(source)))
        else:
            outside = source
        latents = blend_mask * latents + (1 - blend_mask) * outside
    return latents
