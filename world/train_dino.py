"""DINO for the world: a transformers ViTModel whose last block's [CLS] attention (mean over
heads) falls on the objects.

Supervised, not self-distilled: the loss is the KL divergence from a target map to that attention
row. The engine uses DINO for one thing that matters, saliency: anchors are the cells of highest
[CLS] attention, and every box is centred on an anchor. Self-distillation (DINO's own objective)
would need hours of multi-crop training to make attention find objects, and would still say
nothing about where in an object it peaks; with the truth masks at hand the saliency can be right
by construction. The target is each object's mask on the 32 x 32 grid weighted by a Gaussian at
its box centre (so the top cell sits at the centre, where a box around it covers the object), each
object given equal mass, so a small object gets an anchor as surely as a large one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import ViTConfig, ViTModel

from .data import ScenePool, dino_batch
from .scenes import Scene
from .training import StepRng


def build_dino(dino_size: int = 256, patch: int = 8) -> ViTModel:
    config = ViTConfig(patch_size=patch, image_size=dino_size, qkv_bias=True, hidden_size=48, num_hidden_layers=3,
                       num_attention_heads=3, intermediate_size=96)
    config._attn_implementation = "eager"  # sdpa returns no attention maps; saliency needs them
    return ViTModel(config, add_pooling_layer=False)


def saliency_target(scene: Scene, grid: int = 32) -> np.ndarray:
    """[grid * grid] distribution: per object, its mask's cell coverage times a Gaussian at its box
    centre (sigma a third of the box's half-side), normalised to mass 1; then averaged."""
    size = scene.image.shape[0]
    cell = size // grid
    ys, xs = (np.mgrid[0:grid, 0:grid] + 0.5) * cell
    total = np.zeros((grid, grid))
    for obj in scene.objects:
        cover = obj.mask[: grid * cell, : grid * cell].reshape(grid, cell, grid, cell).mean(axis=(1, 3))
        x0, y0, x1, y1 = obj.box
        sigma = max(x1 - x0, y1 - y0) / 6
        bump = np.exp(-(((xs - (x0 + x1) / 2) ** 2 + (ys - (y0 + y1) / 2) ** 2) / (2 * sigma**2)))
        weight = cover * bump
        total += weight / max(weight.sum(), 1e-9)
    return (total / total.sum()).reshape(-1)


def cls_attention(model: ViTModel, pixels: torch.Tensor) -> torch.Tensor:
    """[B, P]: the last block's [CLS] row over the patches, mean over heads (the engine's saliency),
    read from an eager run's attention maps."""
    out = model(pixel_values=pixels, output_attentions=True)
    return out.attentions[-1][:, :, 0, 1:].mean(dim=1)


def cls_attention_row(model: ViTModel, pixels: torch.Tensor) -> torch.Tensor:
    """The same [B, P] as `cls_attention`, computed from the last block's input: only the [CLS]
    query's row, so the model may run with sdpa (an eager run materialises every head's 1025 x 1025
    map and its softmax: at 32 x 32 patches that is most of a training step)."""
    hidden = model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    layer = model.layers[-1]
    x = layer.layernorm_before(hidden)
    attention = layer.attention
    heads, dim = model.config.num_attention_heads, attention.head_dim
    query = attention.q_proj(x[:, :1]).view(len(x), 1, heads, dim).transpose(1, 2)
    key = attention.k_proj(x).view(len(x), -1, heads, dim).transpose(1, 2)
    weights = torch.softmax(query @ key.transpose(2, 3) * attention.scaling, dim=-1)
    return weights[:, :, 0, 1:].mean(dim=1)


@dataclass(frozen=True)
class DinoObjective:
    pool: ScenePool
    model: ViTModel
    dino_size: int = 256
    batch: int = 8

    def __call__(self, rng: StepRng) -> torch.Tensor:
        scenes = self.pool.sample(rng.numpy, self.batch)
        target = torch.from_numpy(np.stack([saliency_target(s) for s in scenes])).float()
        attention = cls_attention_row(self.model, dino_batch(np.stack([s.image for s in scenes]), self.dino_size))
        # Attention over patches sums to 1 less the [CLS]'s own share; renormalise before the KL.
        attention = attention / attention.sum(1, keepdim=True)
        return (target * (torch.log(target + 1e-12) - torch.log(attention + 1e-12))).sum(1).mean()


def hit_rate(model: ViTModel, scenes: list[Scene], dino_size: int = 256, grid: int = 32) -> float:
    """Share of scenes whose top saliency cell lies inside some object's box."""
    with torch.no_grad():  # in chunks: an eager run holds every head's 1025 x 1025 map per image
        attention = torch.cat([cls_attention(model, dino_batch(np.stack([s.image for s in scenes[i:i + 16]]), dino_size))
                               for i in range(0, len(scenes), 16)])
    hits = 0
    for scene, row in zip(scenes, attention):
        cell = scene.image.shape[0] / grid
        r, c = divmod(int(row.argmax()), grid)
        y, x = (r + 0.5) * cell, (c + 0.5) * cell
        hits += any(o.box[0] <= x < o.box[2] and o.box[1] <= y < o.box[3] for o in scene.objects)
    return hits / len(scenes)
