"""The region network in numpy: forward, backward and the parameters' layout, so the runtime can
run a loaded or learned RGN and learn one without torch.

Layers as the authors' `anchor_net` (and `reference.rgn.RegionNetwork.head`, Sequential indices
in the keys): 0 Conv1x1(M*c -> 8), ReLU, 2 Conv1x1(8 -> 4), ReLU, Flatten, 5 Linear(4*l*l -> 4),
ReLU, 7 Linear(4 -> M), LogSoftmax. The seeded 1x1 projection (d -> c) that feeds ROI pooling is
the authors' `conv`. The weights (`RgnParams`) and their checkpoints live in the root package
(`lredit.rgn_checkpoint`), so export reads and writes them too. Arithmetic is float64; the exported `rgn` graph is float32 (they agree to
~1e-6 in log-probabilities, see tests/test_rgn_numpy.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lredit.errors import InputError
from lredit.rgn_checkpoint import RgnParams


@dataclass(frozen=True)
class ForwardCache:
    """Activations kept for the backward pass."""

    pooled: np.ndarray
    h1: np.ndarray
    h2: np.ndarray
    h3: np.ndarray
    log_probs: np.ndarray


def forward(head: Mapping[str, np.ndarray], pooled: np.ndarray) -> ForwardCache:
    """pooled [K, M*c, l, l] -> log-probabilities [K, M] (in the cache, with the activations)."""
    x = np.asarray(pooled, dtype=np.float64)
    w = {k: np.asarray(v, dtype=np.float64) for k, v in head.items()}
    if x.ndim != 4 or x.shape[1] != w["0.weight"].shape[1]:
        raise InputError(f"RGN input has shape {x.shape}; expected [K, {w['0.weight'].shape[1]}, l, l]")
    h1 = np.maximum(np.einsum("oc,kcij->koij", w["0.weight"][:, :, 0, 0], x) + w["0.bias"][None, :, None, None], 0.0)
    h2 = np.maximum(np.einsum("oc,kcij->koij", w["2.weight"][:, :, 0, 0], h1) + w["2.bias"][None, :, None, None], 0.0)
    flat = h2.reshape(h2.shape[0], -1)
    if flat.shape[1] != w["5.weight"].shape[1]:
        raise InputError(f"RGN input side {x.shape[2:]} gives {flat.shape[1]} features; the head takes {w['5.weight'].shape[1]}")
    h3 = np.maximum(flat @ w["5.weight"].T + w["5.bias"], 0.0)
    logits = h3 @ w["7.weight"].T + w["7.bias"]
    return ForwardCache(x, h1, h2, h3, log_softmax(logits))


def log_probs(head: Mapping[str, np.ndarray], pooled: np.ndarray) -> np.ndarray:
    return forward(head, pooled).log_probs


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def backward(head: Mapping[str, np.ndarray], cache: ForwardCache, grad_log_probs: np.ndarray) -> dict[str, np.ndarray]:
    """Gradient of a scalar objective w.r.t. every head array, given d(objective)/d(log_probs) [K, M]."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in head.items()}
    g = np.asarray(grad_log_probs, dtype=np.float64)
    probs = np.exp(cache.log_probs)
    g_logits = g - probs * g.sum(axis=-1, keepdims=True)  # through LogSoftmax
    grads = {"7.weight": g_logits.T @ cache.h3, "7.bias": g_logits.sum(axis=0)}
    g_h3 = (g_logits @ w["7.weight"]) * (cache.h3 > 0)
    flat = cache.h2.reshape(cache.h2.shape[0], -1)
    grads["5.weight"], grads["5.bias"] = g_h3.T @ flat, g_h3.sum(axis=0)
    g_h2 = (g_h3 @ w["5.weight"]).reshape(cache.h2.shape) * (cache.h2 > 0)
    grads["2.weight"] = np.einsum("koij,kcij->oc", g_h2, cache.h1)[:, :, None, None]
    grads["2.bias"] = g_h2.sum(axis=(0, 2, 3))
    g_h1 = np.einsum("oc,koij->kcij", w["2.weight"][:, :, 0, 0], g_h2) * (cache.h1 > 0)
    grads["0.weight"] = np.einsum("koij,kcij->oc", g_h1, cache.pooled)[:, :, None, None]
    grads["0.bias"] = g_h1.sum(axis=(0, 2, 3))
    return grads


class NumpyRgnSession:
    """The `rgn` graph's session contract, run by the numpy RGN (for loaded or learned weights)."""

    input_names = ("pooled",)
    output_names = ("log_probs",)

    def __init__(self, params: RgnParams):
        self.params = params

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        pooled = np.asarray(feeds["pooled"])
        return {"log_probs": log_probs(self.params.head, pooled).astype(np.float32)}
