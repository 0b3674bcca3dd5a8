"""Edit cases with truth, in three disjoint seeded splits (training, tuning, held-out).

Pure numpy (importable without torch). A case names a scene by its seed, the object to change,
and the target (a new shape and a new colour); the region that should change is the source
object's box. Nothing is tuned on the held-out split.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from .scenes import COLOUR_NAMES, SHAPES, Scene, generate_scene


class Split(str, Enum):
    TRAIN = "train"
    TUNE = "tune"
    HELDOUT = "heldout"


SPLIT_STREAMS = {Split.TRAIN: 0, Split.TUNE: 1, Split.HELDOUT: 2}
"""Each split draws its scene seeds from its own stream of SEED_STRIDE integers."""
SEED_STRIDE = 10_000_000


def scene_seed(split: Split, index: int) -> int:
    """The seed of scene `index` of a split; the splits' seed ranges do not meet."""
    if not 0 <= index < SEED_STRIDE:
        raise ValueError(f"scene index {index} is outside 0..{SEED_STRIDE - 1}")
    return SPLIT_STREAMS[Split(split)] * SEED_STRIDE + index


@dataclass(frozen=True)
class EditCase:
    split: Split
    index: int
    scene_seed: int
    source_index: int
    """Which of the scene's objects the edit replaces."""
    source_shape: str
    source_colour: str
    target_shape: str
    target_colour: str
    region: tuple[int, int, int, int]
    """The source object's box (x0, y0, x1, y1), end exclusive, at the case's scene size."""
    size: int

    @property
    def prompt(self) -> str:
        """The edit prompt: 'a green triangle'."""
        return f"a {self.target_colour} {self.target_shape}"

    @property
    def source_caption(self) -> str:
        """'red circle'."""
        return f"{self.source_colour} {self.source_shape}"

    def scene(self) -> Scene:
        return generate_scene(self.scene_seed, self.size)


def make_case(split: Split, index: int, size: int = 128) -> EditCase:
    """Case `index` of a split: its scene, a source object and a target differing in shape and colour."""
    seed = scene_seed(split, index)
    scene = generate_scene(seed, size)
    rng = np.random.default_rng([seed, 1])
    source_index = int(rng.integers(len(scene.objects)))
    source = scene.objects[source_index]
    shapes = [s for s in SHAPES if s != source.shape]
    colours = [c for c in COLOUR_NAMES if c != source.colour]
    return EditCase(
        split=Split(split),
        index=index,
        scene_seed=seed,
        source_index=source_index,
        source_shape=source.shape,
        source_colour=source.colour,
        target_shape=shapes[rng.integers(len(shapes))],
        target_colour=colours[rng.integers(len(colours))],
        region=source.box,
        size=size,
    )


def cases(split: Split, count: int, size: int = 128, start: int = 0) -> list[EditCase]:
    """`count` consecutive cases of a split from index `start`."""
    return [make_case(split, i, size) for i in range(start, start + count)]
