"""Training data drawn from the world's training split: a pool of scenes, object crops, and the
engine's own preprocessing (Pillow bicubic resize, CLIP and ImageNet normalisation), so the
models see at training what the engine feeds them at an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from PIL import Image

from .cases import Split, scene_seed
from .scenes import Scene, generate_scene

CLIP_SIZE = 224
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PROMPT_TEMPLATE = "a high quality image of {prompt}."
"""The engine's default prompt template: every caption is trained in it, as edits are run."""


@dataclass(frozen=True)
class ScenePool:
    """The first `count` scenes of a split at `size` pixels."""

    count: int
    size: int = 128
    split: Split = Split.TRAIN

    @cached_property
    def scenes(self) -> tuple[Scene, ...]:
        return tuple(generate_scene(scene_seed(self.split, i), self.size) for i in range(self.count))

    @cached_property
    def images(self) -> np.ndarray:
        """uint8 [N, H, W, 3]."""
        return np.stack([s.image for s in self.scenes])

    def sample(self, rng: np.random.Generator, batch: int) -> list[Scene]:
        return [self.scenes[i] for i in rng.integers(self.count, size=batch)]


def resized(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> float32 [3, size, size] in [0, 1], Pillow bicubic (as the engine)."""
    img = Image.fromarray(image)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def clip_batch(images: list[np.ndarray]) -> torch.Tensor:
    """[N, 3, 224, 224] CLIP input (bicubic resize, CLIP mean/std)."""
    x = np.stack([resized(im, CLIP_SIZE) for im in images])
    return torch.from_numpy((x - CLIP_MEAN[:, None, None]) / CLIP_STD[:, None, None])


def dino_batch(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> [N, 3, size, size] DINO input (ImageNet mean/std, the engine's default)."""
    x = np.stack([resized(im, size) for im in images])
    return torch.from_numpy((x - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None])


def sd_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1] (diffusers' normalisation)."""
    return torch.from_numpy(images.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0)


def loose_crop(image: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator,
               grow: tuple[float, float] = (1.05, 1.7)) -> np.ndarray:
    """A square crop around `box`, its side `grow` times the box's longer side, centre jittered by
    up to a tenth of the side, clipped to the image (what a chosen region around an object holds)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * rng.uniform(*grow)
    cx = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * side
    cy = (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * side
    h, w = image.shape[:2]
    left, top = int(max(0, round(cx - side / 2))), int(max(0, round(cy - side / 2)))
    right, bottom = int(min(w, round(cx + side / 2))), int(min(h, round(cy + side / 2)))
    return image[top:max(bottom, top + 2), left:max(right, left + 2)]


def templated(caption: str) -> str:
    return PROMPT_TEMPLATE.format(prompt=caption)
