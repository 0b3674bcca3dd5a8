"""The graph spec: the one place a graph's I/O contract lives.

Shapes are tuples of ints and axis symbols. Dynamic symbols (`batch`, `candidates`) carry a
min/opt/max profile; static symbols (`tokens`, `dim`, `height`, ...) are resolved from the models
and the export settings. The ONNX dynamic axes, the TensorRT profile, the manifest's shape table
and the dummy inputs are all derived from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from lredit.config import EditConfig

# Op types kept in fp32 inside fp16 graphs: normalisation statistics and softmax lose range or
# precision in fp16 (casts are inserted around them).
FP16_KEEP_FP32 = ("LayerNormalization", "InstanceNormalization", "GroupNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt")


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    fill: str = "normal"
    """Dummy data: 'normal', 'unit' (uniform 0..1), 'ids' (token ids ending in EOS), 'timestep'."""


FULL = -1
"""An Axis's opt or max that is the symbol's static size for these models (static_sizes): a
spatial axis dynamic below the working size (the VAE decoder's crops)."""


@dataclass(frozen=True)
class Axis:
    """A dynamic axis and its TensorRT optimisation profile (opt, max: an int or FULL)."""

    name: str
    min: int
    opt: int
    max: int

    def at(self, point: str, sizes: Mapping[str, int]) -> int:
        """The axis's size at a profile point ('min', 'opt', 'max'), FULL resolved from `sizes`."""
        value = getattr(self, point)
        return int(sizes[self.name]) if value == FULL else value

    def other_point(self, sizes: Mapping[str, int], prefer: str = "min") -> int:
        """A size away from the opt (export) point, for parity on shapes the tracer did not see:
        `prefer` ('min' or 'max') unless that one is the opt."""
        wanted = self.at(prefer, sizes)
        return wanted if wanted != self.at("opt", sizes) else self.at("max" if prefer == "min" else "min", sizes)


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


_EDIT = EditConfig()


@dataclass(frozen=True)
class ExportSettings:
    """Pipeline geometry the graphs are exported for; the defaults are EditConfig's."""

    dino_size: int = _EDIT.dino_size
    working_size: int = _EDIT.working_size
    channels: int = _EDIT.proj_channels
    """c: channels of the 1x1 projection before pooling (EditConfig.proj_channels)."""
    roi_size: int = _EDIT.roi_size
    half_sizes: tuple[int, ...] = _EDIT.half_sizes
    max_candidates: int = 16
    """K the graphs' profiles reach (UNet batch 2K with guidance)."""

    @property
    def sizes(self) -> int:
        """M: box sizes per anchor."""
        return len(self.half_sizes)


GRAPH_GEOMETRY = ("working_size", "dino_size", "half_sizes", "roi_size")
"""The EditConfig fields that are also ExportSettings' (same names): a models folder's
geometry.json sets them for the graphs, and a bundle then fixes them."""


@dataclass(frozen=True)
class GraphSpec:
    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    axes: tuple[Axis, ...]
    wrap: Callable
    """(ModelSet, ExportSettings) -> torch module with forward(*inputs) -> outputs."""
    static_sizes: Callable
    """(ModelSet, ExportSettings) -> {symbol: int} for the static symbols."""
    tolerance: Mapping[str, Tolerance]
    """Parity bound per precision ('fp32', 'fp16'), allclose-style: |a - b| <= atol + rtol |b|."""
    fp16_keep_fp32: tuple[str, ...] = FP16_KEEP_FP32
    fp16: bool = True
    """False: the fp16 bundle keeps this graph in fp32 (recorded in the manifest)."""
    notes: str = ""
    ort_attention: bool = False
    """Also write an ONNX Runtime variant with attention fused (export/ort_fusion.py); TensorRT
    keeps the standard graph. For graphs with long (>= 1k token) self-attention."""
    shares_weights_with: str | None = None
    """A graph whose weights this one contains (rgn_roi holds the RGN): when both are exported,
    this graph references that graph's weights file instead of storing a second copy."""

    @property
    def dynamic(self) -> dict[str, Axis]:
        return {a.name: a for a in self.axes}

    def resolve(self, shape: tuple[int | str, ...], sizes: Mapping[str, int], point: str = "opt") -> tuple[int, ...]:
        """Symbols -> ints: dynamic axes at the profile point, static ones from `sizes`."""
        out = []
        for dim in shape:
            if isinstance(dim, int):
                out.append(dim)
            elif dim in self.dynamic:
                out.append(self.dynamic[dim].at(point, sizes))
            elif dim in sizes:
                out.append(int(sizes[dim]))
            else:
                raise KeyError(f"graph {self.name}: axis symbol {dim!r} has no value")
        return tuple(out)

    def onnx_dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes = {}
        for t in (*self.inputs, *self.outputs):
            named = {i: d for i, d in enumerate(t.shape) if isinstance(d, str) and d in self.dynamic}
            if named:
                axes[t.name] = named
        return axes

    def profile(self, sizes: Mapping[str, int]) -> dict[str, dict[str, tuple[int, ...]]]:
        """TensorRT min/opt/max shape per input."""
        return {t.name: {p: self.resolve(t.shape, sizes, p) for p in ("min", "opt", "max")} for t in self.inputs}

    def dummy_inputs(self, sizes: Mapping[str, int], rng: np.random.Generator, point: str = "opt", dynamic=None) -> dict:
        """Random inputs at a profile point; `dynamic` sets dynamic axes to other values."""
        values = {**sizes, **{a.name: a.at(point, sizes) for a in self.axes}, **(dynamic or {})}
        return {
            t.name: make_dummy(t, tuple(d if isinstance(d, int) else values[d] for d in t.shape), rng)
            for t in self.inputs
        }

    def table(self, sizes: Mapping[str, int]) -> dict:
        """The manifest's description of this graph's I/O."""

        def row(t: Tensor) -> dict:
            return {
                "name": t.name,
                "dtype": t.dtype,
                "shape": list(t.shape),
                "opt_shape": list(self.resolve(t.shape, sizes)),
            }

        return {
            "inputs": [row(t) for t in self.inputs],
            "outputs": [row(t) for t in self.outputs],
            # the runtime checks each opened graph's signature against these (bundle_loader)
            "dynamic_axes": [a.name for a in self.axes],
        }


def make_dummy(t: Tensor, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if t.fill == "ids":
        ids = rng.integers(0, 49406, size=shape, dtype=np.int64)
        ids[..., 0], ids[..., -1] = 49406, 49407
        return ids
    if t.fill == "timestep":
        return rng.uniform(0, 999, size=shape).astype(np.float32)
    if t.fill == "unit":
        return rng.uniform(0, 1, size=shape).astype(np.float32)
    if t.fill == "cells":  # anchor points are whole feature cells
        return rng.integers(0, 32, size=shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)
