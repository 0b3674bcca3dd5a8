"""The independent judge: a small CNN that reads an object's shape and colour from a crop.

It is trained on object crops of training scenes only and never sees CLIP, the objective or an
edit, so grading an edit with it does not grade the ranker with itself. Crops are loose (1.0 to
1.8 times the object's box, jittered, as a chosen region is) and sometimes blurred (as a VAE
decode is).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from safetensors.torch import load_file, save_file
from torch import nn

from .data import ScenePool, loose_crop
from .scenes import COLOUR_NAMES, SHAPES, Scene
from .training import StepRng

CROP = 32
WEIGHTS, CONFIG = "judge.safetensors", "judge.json"


class Judge(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * (CROP // 8) ** 2, 128), nn.ReLU(),
        )
        self.shape_head = nn.Linear(128, len(SHAPES))
        self.colour_head = nn.Linear(128, len(COLOUR_NAMES))
        self.width = width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.shape_head(h), self.colour_head(h)


@dataclass(frozen=True)
class Reading:
    shape: str
    colour: str
    confidence: float
    """The product of the two heads' top probabilities."""


def judge_pixels(crops: list[np.ndarray]) -> torch.Tensor:
    """uint8 crops [h, w, 3] -> [N, 3, 32, 32] in [0, 1] (bilinear)."""
    small = [np.asarray(Image.fromarray(c).resize((CROP, CROP), Image.Resampling.BILINEAR), np.float32) / 255 for c in crops]
    return torch.from_numpy(np.stack(small).transpose(0, 3, 1, 2).copy())


def read(judge: Judge, crops: list[np.ndarray]) -> list[Reading]:
    """What the judge reads in each crop."""
    with torch.no_grad():
        shape_logits, colour_logits = judge(judge_pixels(crops))
    sp, cp = shape_logits.softmax(1), colour_logits.softmax(1)
    return [Reading(SHAPES[int(s.argmax())], COLOUR_NAMES[int(c.argmax())], float(s.max() * c.max())) for s, c in zip(sp, cp)]


def read_box(judge: Judge, image: np.ndarray, box: tuple[int, int, int, int]) -> Reading:
    """What the judge reads in the box (x0, y0, x1, y1) of a uint8 image."""
    x0, y0, x1, y1 = box
    return read(judge, [image[y0:y1, x0:x1]])[0]


def blurred(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return crop
    return np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))))


@dataclass(frozen=True)
class JudgeObjective:
    pool: ScenePool
    model: Judge
    batch: int = 64

    def __call__(self, rng: StepRng) -> torch.Tensor:
        crops, shapes, colours = [], [], []
        for scene in self.pool.sample(rng.numpy, self.batch):
            obj = scene.objects[rng.numpy.integers(len(scene.objects))]
            crops.append(blurred(loose_crop(scene.image, obj.box, rng.numpy, grow=(1.0, 1.8)), rng.numpy))
            shapes.append(SHAPES.index(obj.shape))
            colours.append(COLOUR_NAMES.index(obj.colour))
        shape_logits, colour_logits = self.model(judge_pixels(crops))
        return F.cross_entropy(shape_logits, torch.tensor(shapes)) + F.cross_entropy(colour_logits, torch.tensor(colours))


def accuracy(judge: Judge, scenes: list[Scene]) -> dict:
    """Shape, colour and both-right accuracy on every object of `scenes`, read in its tight box."""
    objects = [(s, o) for s in scenes for o in s.objects]
    readings = [read_box(judge, s.image, o.box) for s, o in objects]
    shape = np.mean([r.shape == o.shape for (_, o), r in zip(objects, readings)])
    colour = np.mean([r.colour == o.colour for (_, o), r in zip(objects, readings)])
    both = np.mean([r.shape == o.shape and r.colour == o.colour for (_, o), r in zip(objects, readings)])
    return {"objects": len(objects), "shape": float(shape), "colour": float(colour), "both": float(both)}


def save_judge(judge: Judge, folder: Path, metrics: dict | None = None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, folder / WEIGHTS)
    config = {"width": judge.width, "crop": CROP, "shapes": list(SHAPES), "colours": list(COLOUR_NAMES), "heldout": metrics}
    (folder / CONFIG).write_text(json.dumps(config, indent=2))


def load_judge(folder: Path) -> Judge:
    config = json.loads((Path(folder) / CONFIG).read_text())
    if config["shapes"] != list(SHAPES) or config["colours"] != list(COLOUR_NAMES):
        raise ValueError(f"judge in {folder} reads {config['shapes']} / {config['colours']}, not this world's classes")
    judge = Judge(config["width"])
    judge.load_state_dict({k: v.float() for k, v in load_file(Path(folder) / WEIGHTS).items()})
    return judge.eval()
