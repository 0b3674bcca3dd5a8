"""numpy or CuPy: the pipeline's device-resident stages (encode -> denoise -> decode) work on
either, so GPU sessions can keep tensors on the device and CPU sessions pass numpy through."""

from __future__ import annotations

import numpy as np

from lredit.errors import NumericalError


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


def check_finite(stage: str, name: str, value) -> None:
    """NumericalError naming the stage and output where a float array holds NaN/Inf."""
    xp = array_module(value)
    if np.issubdtype(value.dtype, np.floating) and not bool(xp.isfinite(value).all()):
        bad = int((~xp.isfinite(value)).sum())
        raise NumericalError(
            f"stage '{stage}' produced {bad} NaN/Inf values in '{name}'; with fp16 graphs this is "
            "overflow: use an fp32 bundle (lr-export --precision fp32) for that graph"
        )
