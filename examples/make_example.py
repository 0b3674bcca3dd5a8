"""Regenerates the demo images (procedural, CC0: no third-party content): examples/table.png, and
examples/shapes.png, a scene of the shapes world (lredit.world: held-out case SHAPES_CASE)."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make(path: Path) -> None:
    w, h = 640, 480
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    sky = (1 - y) * np.array([150, 190, 235]) + y * np.array([235, 225, 205])
    img = Image.fromarray(np.broadcast_to(sky, (h, w, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 300, w, h), fill=(120, 80, 50))  # table
    d.ellipse((220, 250, 420, 330), fill=(235, 235, 240), outline=(90, 90, 100), width=3)  # bowl rim
    d.chord((220, 200, 420, 380), 0, 180, fill=(225, 225, 232))  # bowl body
    for cx, cy, col in [(270, 262, (250, 160, 20)), (320, 252, (230, 40, 40)), (370, 262, (250, 200, 30))]:
        d.ellipse((cx - 30, cy - 30, cx + 30, cy + 30), fill=col)  # fruit
    d.ellipse((500, 60, 580, 140), fill=(255, 240, 170))  # sun
    img.filter(ImageFilter.SMOOTH).save(path, optimize=True)


SHAPES_CASE = 19
"""The held-out case of the README's first demo (its prompt and source caption are there)."""


def make_shapes(path: Path, index: int = SHAPES_CASE) -> None:
    from lredit.world.cases import Split, make_case

    make_case(Split.HELDOUT, index).scene().pil().save(path, optimize=True)


if __name__ == "__main__":
    make(Path(__file__).with_name("table.png"))
    make_shapes(Path(__file__).with_name("shapes.png"))
