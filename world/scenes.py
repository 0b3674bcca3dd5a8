"""Procedural scenes with known truth: 1 to 3 flat-colour shapes on a varied background.

Pure numpy/Pillow (importable without torch). Every scene is a function of its seed and size:
the same seed and size draw the same pixels. Geometry is drawn in fractions of the side, so scenes
come at any size (rejection sampling reads the raster, so one seed at two sizes may be two
different scenes); the truth (per object box, mask, shape, colour) is read from the drawn pixels, so a box is
the tight bounding box of the pixels its object still shows after the ones drawn over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (35, 70, 225),
    "yellow": (240, 215, 20),
    "orange": (245, 130, 20),
    "purple": (140, 40, 180),
    "pink": (245, 120, 190),
    "cyan": (30, 200, 215),
}
COLOUR_NAMES = tuple(COLOURS)
BACKGROUNDS = ("white", "grey", "black", "gradient", "textured")
COLOUR_JITTER = 12
"""Largest change of an object's RGB from its named colour (per channel, uniform)."""
MIN_VISIBLE = 0.6
"""An object drawn over by later ones keeps at least this share of its own pixels."""


@dataclass(frozen=True)
class SceneObject:
    """One drawn object and its truth."""

    shape: str
    colour: str
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1) in pixels, end exclusive: the tight box of its visible pixels."""
    mask: np.ndarray
    """bool [H, W]: the pixels that show this object."""

    @property
    def caption(self) -> str:
        """'a red circle'."""
        return f"a {self.colour} {self.shape}"

    @property
    def name(self) -> str:
        """'red circle' (the source caption of an edit)."""
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    seed: int
    image: np.ndarray
    """uint8 [H, W, 3]."""
    background: str
    objects: tuple[SceneObject, ...]

    @property
    def caption(self) -> str:
        """'a red circle and a blue square on a grey background'."""
        names = [o.caption for o in self.objects]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"{listed} on a {self.background} background"

    def pil(self) -> Image.Image:
        return Image.fromarray(self.image)


@dataclass(frozen=True)
class Placement:
    """An object's drawing parameters in fractions of the side."""

    shape: str
    colour: str
    cx: float
    cy: float
    radius: float
    angle: float
    rgb: tuple[int, int, int]


def polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Outline of a polygonal shape (square, triangle, star, cross) in pixels."""
    if shape == "square":
        corners = [(math.cos(angle + math.pi / 4 + i * math.pi / 2), math.sin(angle + math.pi / 4 + i * math.pi / 2)) for i in range(4)]
        return [(cx + r * x, cy + r * y) for x, y in corners]
    if shape == "triangle":
        return [(cx + r * math.cos(angle - math.pi / 2 + i * 2 * math.pi / 3), cy + r * math.sin(angle - math.pi / 2 + i * 2 * math.pi / 3))
                for i in range(3)]
    if shape == "star":
        return [(cx + (r if i % 2 == 0 else 0.45 * r) * math.cos(angle - math.pi / 2 + i * math.pi / 5),
                 cy + (r if i % 2 == 0 else 0.45 * r) * math.sin(angle - math.pi / 2 + i * math.pi / 5)) for i in range(10)]
    if shape == "cross":
        a, b = r, 0.36 * r
        arm = [(b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b), (-b, -a)]
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in arm]
    raise ValueError(f"shape {shape!r} is not a polygon; expected one of square, triangle, star, cross")


def shape_mask(p: Placement, size: int) -> np.ndarray:
    """bool [size, size]: the pixels the shape covers."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = p.cx * size, p.cy * size, p.radius * size
    if p.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    elif p.shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        inner = 0.55 * r
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    else:
        draw.polygon(polygon(p.shape, cx, cy, r, p.angle), fill=255)
    return np.asarray(canvas) > 127


def background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [size, size, 3] background of a kind in BACKGROUNDS."""
    if kind == "white":
        return np.full((size, size, 3), rng.integers(225, 250), np.uint8)
    if kind == "grey":
        return np.full((size, size, 3), rng.integers(105, 150), np.uint8)
    if kind == "black":
        return np.full((size, size, 3), rng.integers(5, 35), np.uint8)
    if kind == "gradient":
        start, end = rng.integers(60, 200, size=3), rng.integers(60, 200, size=3)
        angle = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        t = np.clip(0.5 + (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle), 0, 1)[..., None]
        return (start * (1 - t) + end * t).round().astype(np.uint8)
    if kind == "textured":
        base = rng.integers(90, 170, size=3)
        cells = rng.integers(4, 12)
        noise = rng.uniform(-25, 25, size=(cells, cells, 1))
        small = Image.fromarray(((noise + 128).clip(0, 255)).astype(np.uint8)[..., 0])
        field = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), np.float32)[..., None] - 128
        grain = rng.uniform(-8, 8, size=(size, size, 1))
        return (base + field + grain).clip(0, 255).round().astype(np.uint8)
    raise ValueError(f"background {kind!r} is unknown; expected one of {BACKGROUNDS}")


def random_placement(rng: np.random.Generator, shape: str | None = None, colour: str | None = None) -> Placement:
    """A shape of radius 0.09..0.22 of the side, fully inside the image."""
    shape = shape or SHAPES[rng.integers(len(SHAPES))]
    colour = colour or COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    radius = float(rng.uniform(0.09, 0.22))
    cx, cy = (float(v) for v in rng.uniform(radius + 0.01, 1 - radius - 0.01, size=2))
    rgb = tuple(int(np.clip(c + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1), 0, 255)) for c in COLOURS[colour])
    return Placement(shape, colour, cx, cy, radius, float(rng.uniform(0, 2 * math.pi)), rgb)


def compose(placements: list[Placement], back: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw placements in order over `back`; returns the image and each object's visible mask."""
    size = back.shape[0]
    image = back.copy()
    covers = [shape_mask(p, size) for p in placements]
    visible = []
    for i, (p, cover) in enumerate(zip(placements, covers)):
        image[cover] = p.rgb
        later = np.zeros_like(cover)
        for other in covers[i + 1:]:
            later |= other
        visible.append(cover & ~later)
    return image, visible


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end exclusive, of the True pixels."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def acceptable(placements: list[Placement], visible: list[np.ndarray], size: int) -> bool:
    """Every object keeps MIN_VISIBLE of its pixels and no two objects share shape and colour."""
    names = {(p.shape, p.colour) for p in placements}
    if len(names) < len(placements):
        return False
    return all(v.sum() >= MIN_VISIBLE * max(shape_mask(p, size).sum(), 1) and v.any() for p, v in zip(placements, visible))


def generate_scene(seed: int, size: int = 128, *, max_objects: int = 3) -> Scene:
    """The scene of `seed` at `size` x `size` pixels (same seed, same scene)."""
    rng = np.random.default_rng(seed)
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    back = background(kind, size, rng)
    count = int(rng.integers(1, max_objects + 1))
    while True:
        placements = [random_placement(rng) for _ in range(count)]
        if count > 1 and rng.random() < 0.35:
            placements[1] = near(placements[0], placements[1], rng)
        image, visible = compose(placements, back)
        if acceptable(placements, visible, size):
            break
    objects = tuple(SceneObject(p.shape, p.colour, tight_box(v), v) for p, v in zip(placements, visible))
    return Scene(seed, image, kind, objects)


def near(anchor: Placement, other: Placement, rng: np.random.Generator) -> Placement:
    """`other` moved so it touches or overlaps `anchor` (centre distance 0.75..1.05 of the radii sum)."""
    direction = rng.uniform(0, 2 * math.pi)
    distance = (anchor.radius + other.radius) * rng.uniform(0.75, 1.05)
    r = other.radius
    cx = float(np.clip(anchor.cx + distance * math.cos(direction), r + 0.01, 1 - r - 0.01))
    cy = float(np.clip(anchor.cy + distance * math.sin(direction), r + 0.01, 1 - r - 0.01))
    return Placement(other.shape, other.colour, cx, cy, r, other.angle, other.rgb)
