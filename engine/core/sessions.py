"""The one session contract every backend implements (graph names: lredit.graphs)."""

from __future__ import annotations

from typing import Mapping, Protocol

import numpy as np


class GraphSession(Protocol):
    """Runs one graph: named numpy inputs in, named numpy outputs out."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class Scheduler(Protocol):
    """A diffusion scheduler over numpy arrays: diffusers' interface, reduced to what the loop uses."""

    init_noise_sigma: float

    def set_timesteps(self, steps: int) -> np.ndarray: ...

    def scale_model_input(self, sample: np.ndarray, timestep: float) -> np.ndarray: ...

    def step(self, model_output: np.ndarray, timestep: float, sample: np.ndarray) -> np.ndarray: ...

    def predict_x0(self, model_output: np.ndarray, timestep: float, sample: np.ndarray) -> np.ndarray: ...

    def noised(self, x0: np.ndarray, noise: np.ndarray, index: int) -> np.ndarray:
        """x0 noised to the level of the sample after step `index` (x0 after the last step)."""
        ...

    def select(self, rows) -> None:
        """Keep only these batch rows of the per-row state (multistep history included)."""
