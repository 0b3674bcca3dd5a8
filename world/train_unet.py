"""The world's inpainting UNet: a 9-channel diffusers UNet2DConditionModel trained as SD
inpainting is. Input = noisy latent (4) + mask at latent size (1, the engine's `mask[::8, ::8]`) +
latent of the image with the mask's pixels zeroed (4); epsilon prediction under SD 1.x's
scaled-linear betas; conditioning = the frozen SD text encoder's last hidden state.

Masks are boxes, as the engine's regions are: two in three around an object (its box grown 1.0 to
2.2 times and jittered), captioned with that object ("a high quality image of a red circle."), so
a box and a prompt learn to mean "paint this object here"; the rest random boxes captioned with
the whole scene. One caption in ten is dropped to the empty prompt (the engine's negative prompt),
so classifier-free guidance has an unconditional model to push away from.

The VAE latents of every (scene, mask) pair of the pool are encoded once before training (the VAE
is frozen): the steps then cost the UNet alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from tqdm import tqdm
from transformers import CLIPTextModel

from lredit.tokenizer import ClipTokenizer

from .data import ScenePool, sd_batch, templated
from .scenes import Scene

CAPTION_DROPOUT = 0.1
MASKS_PER_SCENE = 3


def build_unet(latent_size: int = 16, cross_dim: int = 64) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=9,
        out_channels=4,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_dim,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def training_scheduler(config: dict) -> DDPMScheduler:
    """The noise schedule of the shipped (PNDM) scheduler's betas, for add_noise."""
    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")
    return DDPMScheduler(**{k: config[k] for k in keys})


def object_box(scene: Scene, rng: np.random.Generator) -> tuple[tuple[int, int, int, int], str]:
    """A box around one object (grown 1.0..2.2 times, centre jittered) and its caption."""
    obj = scene.objects[rng.integers(len(scene.objects))]
    x0, y0, x1, y1 = obj.box
    grow = rng.uniform(1.0, 2.2)
    w, h = (x1 - x0) * grow, (y1 - y0) * grow
    side = max(w, h) if rng.random() < 0.7 else None  # the engine's boxes are square
    w, h = (side, side) if side else (w, h)
    cx = (x0 + x1) / 2 + rng.uniform(-0.15, 0.15) * w
    cy = (y0 + y1) / 2 + rng.uniform(-0.15, 0.15) * h
    return clipped_box(cx, cy, w, h, scene.image.shape[0]), obj.caption


def random_box(scene: Scene, rng: np.random.Generator) -> tuple[tuple[int, int, int, int], str]:
    size = scene.image.shape[0]
    w, h = rng.uniform(0.2, 0.8, size=2) * size
    cx, cy = rng.uniform(0, size, size=2)
    return clipped_box(cx, cy, w, h, size), scene.caption


def clipped_box(cx: float, cy: float, w: float, h: float, size: int) -> tuple[int, int, int, int]:
    x0, y0 = int(max(0, round(cx - w / 2))), int(max(0, round(cy - h / 2)))
    x1, y1 = int(min(size, round(cx + w / 2))), int(min(size, round(cy + h / 2)))
    return x0, y0, max(x1, x0 + 8), max(y1, y0 + 8)


@dataclass(frozen=True)
class InpaintPool:
    """Every (scene, mask) pair's tensors, encoded once."""

    latents: torch.Tensor
    """[P, 4, h, w] scaled latents of the scene."""
    masks: torch.Tensor
    """[P, 1, h, w] the mask at latent size (1 = repaint)."""
    masked_latents: torch.Tensor
    """[P, 4, h, w] scaled latents of the scene with the masked pixels zeroed."""
    captions: tuple[str, ...]
    """Templated captions of the pairs."""

    def draw(self, rng, batch: int):
        """(latents, mask + masked-image channels, captions with one in ten dropped) of `batch` random pairs."""
        picks = torch.from_numpy(rng.numpy.integers(len(self.captions), size=batch))
        dropped = rng.numpy.random(batch) < CAPTION_DROPOUT
        captions = ["" if drop else self.captions[int(i)] for i, drop in zip(picks, dropped)]
        return self.latents[picks], torch.cat([self.masks[picks], self.masked_latents[picks]], dim=1), captions


def encode_pool(pool: ScenePool, vae: AutoencoderKL, rng: np.random.Generator, *, progress: bool = True) -> InpaintPool:
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    scale = float(vae.config.scaling_factor)
    latents, masks, masked, captions = [], [], [], []
    for scene in tqdm(pool.scenes, desc="unet data", disable=not progress, mininterval=5):
        boxes = [object_box(scene, rng) if j < MASKS_PER_SCENE - 1 else random_box(scene, rng) for j in range(MASKS_PER_SCENE)]
        pixel_masks = np.zeros((len(boxes), scene.image.shape[0], scene.image.shape[1]), np.float32)
        for j, ((x0, y0, x1, y1), caption) in enumerate(boxes):
            pixel_masks[j, y0:y1, x0:x1] = 1
            captions.append(templated(caption))
        image = sd_batch(scene.image[None])
        with torch.no_grad():
            z = vae.encode(torch.cat([image, image * (torch.from_numpy(pixel_masks[:, None]) < 0.5)])).latent_dist.mean * scale
        latents.append(z[:1].expand(len(boxes), -1, -1, -1))
        masked.append(z[1:])
        masks.append(torch.from_numpy(pixel_masks[:, None, ::factor, ::factor].copy()))
    return InpaintPool(torch.cat(latents), torch.cat(masks), torch.cat(masked), tuple(captions))


def save_pool(data: InpaintPool, path: Path) -> None:
    tmp = Path(path).with_suffix(".tmp")
    torch.save({"latents": data.latents, "masks": data.masks, "masked_latents": data.masked_latents,
                "captions": list(data.captions)}, tmp)
    tmp.replace(path)


def load_pool(path: Path) -> InpaintPool:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return InpaintPool(state["latents"], state["masks"], state["masked_latents"], tuple(state["captions"]))


@dataclass(frozen=True)
class TextCache:
    """Last hidden states of the frozen SD text encoder, one per distinct caption."""

    states: dict

    @classmethod
    def build(cls, encoder: CLIPTextModel, tokenizer: ClipTokenizer, captions: set[str]) -> "TextCache":
        ordered = sorted(captions | {""})
        states = {}
        with torch.no_grad():
            for start in range(0, len(ordered), 256):
                chunk = ordered[start:start + 256]
                ids = torch.tensor(np.stack([tokenizer.encode(c).ids for c in chunk]), dtype=torch.long)
                for caption, state in zip(chunk, encoder(input_ids=ids).last_hidden_state):
                    states[caption] = state
        return cls(states)

    def __call__(self, captions: list[str]) -> torch.Tensor:
        return torch.stack([self.states[c] for c in captions])


@dataclass(frozen=True)
class UnetObjective:
    """SD's epsilon loss on batches drawn from `data` (InpaintPool: the inpainting UNet's pairs;
    ScenePairs: the text-to-image UNet's scenes)."""

    data: "InpaintPool | ScenePairs"
    text: TextCache
    model: UNet2DConditionModel
    noise_schedule: DDPMScheduler
    batch: int = 32

    def __call__(self, rng) -> torch.Tensor:
        latents, conditioning, captions = self.data.draw(rng, self.batch)
        return epsilon_loss(self.model, self.noise_schedule, latents, conditioning, self.text(captions), rng)


def epsilon_loss(model, schedule: DDPMScheduler, latents: torch.Tensor, conditioning: torch.Tensor | None,
                 context: torch.Tensor, rng) -> torch.Tensor:
    """SD's training loss: the noise added at a random timestep, predicted from the noisy latent
    (the mask and masked-image channels appended for an inpainting UNet)."""
    noise = torch.randn(latents.shape, generator=rng.torch)
    steps = torch.randint(0, schedule.config.num_train_timesteps, (len(latents),), generator=rng.torch)
    noisy = schedule.add_noise(latents, noise, steps)
    inputs = noisy if conditioning is None else torch.cat([noisy, conditioning], dim=1)
    return F.mse_loss(model(inputs, steps, encoder_hidden_states=context).sample, noise)


# -- the text-to-image UNet (the sd-blend editor's) ------------------------------------------
OBJECT_CAPTION_SHARE = 0.5
"""Share of steps a scene is captioned by one of its objects ('a red square') instead of the whole
scene: an sd-blend edit prompts with one object's caption and blends the rest of the scene in."""


def text_to_image_unet(inpainting: UNet2DConditionModel) -> UNet2DConditionModel:
    """A 4-channel UNet started from the inpainting one: conv_in keeps the filters over the noisy
    latent (those over the mask and the masked-image latent are dropped), every other weight is
    copied, so training starts from a model that already paints the world's objects."""
    plain = inpainting.config.out_channels
    model = UNet2DConditionModel.from_config({**inpainting.config, "in_channels": plain})
    state = dict(inpainting.state_dict())
    state["conv_in.weight"] = state["conv_in.weight"][:, :plain].clone()
    model.load_state_dict(state)
    return model


@dataclass(frozen=True)
class ScenePairs:
    """Every training scene's latent and captions, encoded once."""

    latents: torch.Tensor
    """[N, 4, h, w] scaled latents."""
    captions: tuple[tuple[str, ...], ...]
    """Per scene: its templated caption, then each object's."""

    def draw(self, rng, batch: int):
        """(latents, None, captions) of `batch` random scenes: one caption in ten dropped, else the
        scene's or (OBJECT_CAPTION_SHARE of the time) one of its objects'."""
        picks = rng.numpy.integers(len(self.captions), size=batch)
        captions = []
        for i in picks:
            options = self.captions[int(i)]
            if rng.numpy.random() < CAPTION_DROPOUT:
                captions.append("")
            elif rng.numpy.random() < OBJECT_CAPTION_SHARE:
                captions.append(options[1 + rng.numpy.integers(len(options) - 1)])
            else:
                captions.append(options[0])
        return self.latents[torch.from_numpy(picks)], None, captions


def encode_scenes(pool: ScenePool, vae: AutoencoderKL, *, progress: bool = True, batch: int = 64) -> ScenePairs:
    scale = float(vae.config.scaling_factor)
    latents = []
    scenes = pool.scenes
    for lo in tqdm(range(0, len(scenes), batch), desc="t2i data", disable=not progress, mininterval=5):
        images = sd_batch(np.stack([s.image for s in scenes[lo:lo + batch]]))
        with torch.no_grad():
            latents.append(vae.encode(images).latent_dist.mean * scale)
    captions = tuple((templated(s.caption), *(templated(o.caption) for o in s.objects)) for s in scenes)
    return ScenePairs(torch.cat(latents), captions)
