"""The SD VAE of the world: diffusers AutoencoderKL with SD's factor 8 and 4 latent channels,
trained on random crops of training scenes (without the mid-block attention it is fully
convolutional, so crops teach it the whole image) with L1 + MSE reconstruction and SD's small
KL weight. A two-stage curriculum: 32 px crops (batch 16) first, cheap but mostly background;
then 64 px crops (batch 8), which hold whole objects: after the first stage alone held-out PSNR
was 19.3 dB with colours washed out. The scaling factor is set afterwards from the latents' standard deviation, as SD's
0.18215 was."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from .data import ScenePool, sd_batch
from .training import StepRng

KL_WEIGHT = 1e-6


def build_vae(size: int = 128) -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=size,
        mid_block_add_attention=False,  # convolutions only: trained on crops, run on whole scenes
    )


@dataclass(frozen=True)
class VaeObjective:
    pool: ScenePool
    model: AutoencoderKL
    stages: tuple[tuple[int, int, int], ...] = ((0, 32, 16), (1500, 64, 8))
    """(first step, crop side, batch) of each curriculum stage."""

    def __call__(self, rng: StepRng) -> torch.Tensor:
        crop, batch = [(c, b) for first, c, b in self.stages if rng.step >= first][-1]
        picks = rng.numpy.integers(self.pool.count, size=batch)
        tops = rng.numpy.integers(0, self.pool.size - crop + 1, size=(batch, 2))
        crops = np.stack([self.pool.images[i, t:t + crop, left:left + crop] for i, (t, left) in zip(picks, tops)])
        x = sd_batch(crops)
        posterior = self.model.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=rng.torch)
        recon = self.model.decode(z).sample
        kl = posterior.kl().mean()
        return F.l1_loss(recon, x) + F.mse_loss(recon, x) + KL_WEIGHT * kl


def psnr(model: AutoencoderKL, images: np.ndarray) -> float:
    """Mean PSNR (dB, 0..255 scale) of encode (posterior mean) -> decode over uint8 [N, H, W, 3]."""
    with torch.no_grad():
        x = sd_batch(images)
        recon = model.decode(model.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    mse = ((recon - x) / 2 * 255).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-6)
    return float((10 * torch.log10(255.0**2 / mse)).mean())


def latent_std(model: AutoencoderKL, images: np.ndarray) -> float:
    with torch.no_grad():
        return float(model.encode(sd_batch(images)).latent_dist.mean.std())


# -- the decoder fine-tune -------------------------------------------------------------------
OBJECT_WEIGHT = 4.0
"""Extra reconstruction weight on object pixels: what the judge reads (and an edit paints) is the
objects, a small share of each scene."""


def scene_weights(scenes) -> torch.Tensor:
    """[N, 1, H, W] 1 + OBJECT_WEIGHT on every object's pixels."""
    masks = np.stack([np.any([o.mask for o in s.objects], axis=0) for s in scenes]).astype(np.float32)
    return torch.from_numpy(1.0 + OBJECT_WEIGHT * masks[:, None])


@dataclass(frozen=True)
class DecoderObjective:
    """The decoder (and post-quant conv) fine-tuned on whole scenes with the encoder frozen, as SD's
    ft-MSE decoder was: the latent space the UNet was trained in does not move. Latents are
    posterior samples (the UNet's outputs are not exact posterior means); the loss is L1 + MSE
    weighted onto the objects' pixels."""

    latents: torch.Tensor
    """[N, 4, h, w] posterior means, unscaled."""
    stds: torch.Tensor
    images: torch.Tensor
    """[N, 3, H, W] in [-1, 1]."""
    weights: torch.Tensor
    model: AutoencoderKL
    batch: int = 16

    def __call__(self, rng: StepRng) -> torch.Tensor:
        picks = torch.from_numpy(rng.numpy.integers(len(self.latents), size=self.batch))
        z = self.latents[picks] + self.stds[picks] * torch.randn(self.latents[picks].shape, generator=rng.torch)
        recon = self.model.decode(z).sample
        x, w = self.images[picks], self.weights[picks]
        return ((recon - x).abs() * w).mean() + ((recon - x).pow(2) * w).mean()


def encode_frozen(model: AutoencoderKL, images: np.ndarray, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(posterior means, stds) of uint8 [N, H, W, 3] under the frozen encoder."""
    means, stds = [], []
    with torch.no_grad():
        for lo in range(0, len(images), batch):
            posterior = model.encode(sd_batch(images[lo:lo + batch])).latent_dist
            means.append(posterior.mean)
            stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


def freeze_encoder(model: AutoencoderKL) -> AutoencoderKL:
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(("decoder.", "post_quant_conv.")))
    return model


def judged_round_trip(model: AutoencoderKL, pool: ScenePool, judge_dir) -> float:
    """Share of the pool's objects the judge reads right (shape and colour) after encode -> decode."""
    import dataclasses

    from .judge import accuracy, load_judge

    with torch.no_grad():
        recon = [model.decode(model.encode(sd_batch(s.image[None])).latent_dist.mean).sample[0] for s in pool.scenes]
    scenes = [dataclasses.replace(s, image=((r.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
              for s, r in zip(pool.scenes, recon)]
    return accuracy(load_judge(judge_dir), scenes)["both"]
