"""numpy or CuPy: the pipeline's device-resident stages (encode -> denoise -> decode) work on
either, so GPU sessions can keep tensors on the device and CPU sessions pass numpy through."""

from __future__ import annotations

import numpy as np


def on_device(array) -> bool:
    """True for a CuPy (GPU) array."""
    return type(array).__module__.split(".")[0] == "cupy"


def array_module(array):
    """The module whose functions take `array`: cupy for device arrays, numpy otherwise."""
    if on_device(array):
        import cupy

        return cupy
    return np


def to_host(array) -> np.ndarray:
    """A numpy array from a numpy or CuPy one (one device-to-host copy for the latter)."""
    return array.get() if on_device(array) else np.asarray(array)
