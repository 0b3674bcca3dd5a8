"""The engine's initial noise: one fixed draw per (seed, anchor, size).

Keyed by the anchor and the box size it is inpainted with, so a pair's noise does not depend on
which other pairs share the batch (region search, batched requests) or on K.
"""

from __future__ import annotations

import numpy as np


def initial_noise(seed: int, anchor: int, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """float32 standard normal of `shape` for candidate (anchor, size) of an edit seeded `seed`."""
    return np.random.default_rng([seed, anchor, size]).standard_normal(shape, dtype=np.float32)
