"""Device names (`--device`): parsed and checked before any model loads.

A GPU is looked for through the CUDA driver (libcuda, by ctypes), so the check imports neither
torch nor ONNX Runtime, and runs only when a command asks for cuda (never at import time).
"""

from __future__ import annotations

import ctypes
import re

from .errors import InputError

DEVICE_RULE = "'cpu', 'cuda' or 'cuda:N'"
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")


def parse_device(name) -> str:
    """`name` if it is a device lredit runs on, else an InputError naming the rule."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        raise InputError(f"--device {name!r} is unknown; expected {DEVICE_RULE}")
    return name


def cuda_device_count() -> int:
    """GPUs the CUDA driver sees (0 without a driver or a GPU)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def resolve_device(name, *, cpu_fallback: bool, gpus: int | None = None) -> str:
    """The device an edit runs on: `name` when it exists here; 'cpu' for a cuda name without a GPU
    when `cpu_fallback` is asked for; otherwise an InputError saying what is missing."""
    device = parse_device(name)
    if device == "cpu":
        return device
    gpus = cuda_device_count() if gpus is None else gpus
    index = int(device.partition(":")[2] or 0)
    if index < gpus:
        return device
    if cpu_fallback:
        return "cpu"
    found = "no CUDA GPU is visible" if gpus == 0 else f"only {gpus} CUDA GPU(s) are visible (cuda:0..cuda:{gpus - 1})"
    raise InputError(f"--device {device}: {found}; use --device cpu, or add --cpu-fallback to run on the CPU instead")
