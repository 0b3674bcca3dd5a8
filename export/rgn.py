"""The region network in torch: the seeded 1x1 projection (d -> c) and the RGN head.

Head layers as in the authors' code: Conv1x1(M*c -> 8), ReLU, Conv1x1(8 -> 4), ReLU, Flatten,
Linear(4*l*l -> 4), ReLU, Linear(4 -> M), LogSoftmax. Its parameters carry the Sequential
indices 0, 2, 5, 7, which is the layout `load_rgn_checkpoint` expects under `anchor_net.`; the
projection is the authors' `conv`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lredit.rgn_checkpoint import LoadedRgn, RgnParams, load_rgn


class RegionNetwork(nn.Module):
    def __init__(self, feature_dim: int, channels: int, sizes: int, roi_size: int, seed: int = 0):
        super().__init__()
        self.feature_dim, self.channels, self.sizes, self.roi_size = feature_dim, channels, sizes, roi_size
        with torch.random.fork_rng(devices=[]):  # layer constructors draw from the global RNG
            self._build(feature_dim, channels, sizes, roi_size)
        self.reset_parameters(seed)

    def _build(self, feature_dim: int, channels: int, sizes: int, roi_size: int) -> None:
        self.projection = nn.Conv2d(feature_dim, channels, kernel_size=1)
        self.head = nn.Sequential(
            nn.Conv2d(sizes * channels, 8, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(8, 4, kernel_size=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * roi_size * roi_size, 4),
            nn.ReLU(),
            nn.Linear(4, sizes),
            nn.LogSoftmax(dim=-1),
        )

    def reset_parameters(self, seed: int) -> None:
        """torch's default init (U(+-1/sqrt(fan_in)) for weights and biases) from a private
        generator, so the global RNG is left alone and a seed always gives the same network."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in [self.projection, *self.head]:
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    bound = 1.0 / math.sqrt(module.weight[0].numel())
                    module.weight.uniform_(-bound, bound, generator=gen)
                    module.bias.uniform_(-bound, bound, generator=gen)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """[K, M*c, l, l] pooled maps -> [K, M] log-probabilities over box sizes."""
        return self.head(pooled)

    def projection_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight [c, d], bias [c]) float32, for the numpy / kernel side of the pipeline."""
        weight = self.projection.weight.detach().float().cpu().numpy().reshape(self.channels, -1)
        bias = self.projection.bias.detach().float().cpu().numpy()
        return np.ascontiguousarray(weight), np.ascontiguousarray(bias)


def load_rgn_checkpoint(network: RegionNetwork, path: Path) -> LoadedRgn:
    """Load a checkpoint into `network`: the head (`anchor_net.*`) and, when the file has it, the
    projection (`conv.*`), so a loaded head is never paired with another projection. Formats and
    key rules: `lredit.rgn_checkpoint` (safetensors without torch; `.pt` with `module.`
    prefix and/or a `state_dict` entry). A head-only file keeps the seeded projection; the
    returned warnings say so."""
    loaded = load_rgn(
        Path(path), network.projection_arrays(), sizes=network.sizes, channels=network.channels, roi_size=network.roi_size
    )
    params = loaded.params
    with torch.no_grad():
        network.head.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in params.head.items()})
        network.projection.weight.copy_(torch.from_numpy(params.projection_weight).reshape(network.projection.weight.shape))
        network.projection.bias.copy_(torch.from_numpy(params.projection_bias))
    return loaded


def rgn_params(network: RegionNetwork) -> RgnParams:
    """The network's weights as numpy arrays (what the bundle's rgn.safetensors holds)."""
    head = {k: v.detach().float().cpu().numpy() for k, v in network.head.state_dict().items()}
    return RgnParams(head, *network.projection_arrays())
