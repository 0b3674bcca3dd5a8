"""The region network in torch: the seeded 1x1 projection (d -> c) and the RGN head.

Head layers as in the authors' code: Conv1x1(M*c -> 8), ReLU, Conv1x1(8 -> 4), ReLU, Flatten,
Linear(4*l*l -> 4), ReLU, Linear(4 -> M), LogSoftmax. Its parameters carry the Sequential
indices 0, 2, 5, 7, which is the layout `load_rgn_checkpoint` expects under `anchor_net.`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lredit.errors import ModelSourceError


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


def load_rgn_checkpoint(network: RegionNetwork, path: Path) -> None:
    """Load the head from a checkpoint in the authors' format: keys `anchor_net.<i>.weight|bias`,
    optionally under `module.` (DataParallel) and/or inside a `state_dict` entry."""
    path = Path(path)
    if not path.is_file():
        raise ModelSourceError(f"RGN checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean "unreadable"
        raise ModelSourceError(f"cannot read RGN checkpoint {path}: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelSourceError(f"RGN checkpoint {path} holds a {type(state).__name__}, not a state dict")
    head = {}
    for key, value in state.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name.startswith("anchor_net."):
            head[name[len("anchor_net.") :]] = value
    if not head:
        sample = ", ".join(list(state)[:5])
        raise ModelSourceError(f"RGN checkpoint {path} has no 'anchor_net.*' keys (found: {sample} ...)")
    expected = network.head.state_dict()
    missing = sorted(set(expected) - set(head))
    unexpected = sorted(set(head) - set(expected))
    wrong = sorted(k for k in set(head) & set(expected) if tuple(head[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        raise ModelSourceError(
            f"RGN checkpoint {path} does not fit M={network.sizes}, c={network.channels}, "
            f"l={network.roi_size}: missing {missing}, unexpected {unexpected}, wrong shape {wrong}"
        )
    network.head.load_state_dict(head)
