"""Learning the RGN from rewards r = -L (L = the per-image objective of one (anchor, size) pair),
in numpy: the policy gradients, Adam, and `learn_sizes`, the per-image loop of mode `learn`.

The RGN is a policy over M box sizes per anchor. Two gradients of the expected loss
J = mean_k sum_m p_km L_km:
- exact (`expected_loss_grad`): all M sizes of an anchor were scored, so J is known exactly and
  dJ/dlog p_km = p_km L_km / K (the softmax backward then subtracts the mean under p);
- score function (`reinforce_grad`, REINFORCE): only sampled sizes were scored; the surrogate
  mean_k mean_s (L_ks - b_k) log p_k(s) has J's gradient in expectation, with b_k a per-anchor
  mean baseline.
Inpaints are deterministic per (anchor, size) (noise keyed by seed, anchor, size), so
`learn_sizes` caches each pair's loss: N iterations cost at most K x M inpaints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np

from lredit.engine.ops import rgn_numpy
from lredit.errors import InputError

log = logging.getLogger(__name__)

PairScorer = Callable[[np.ndarray], np.ndarray]
"""pairs [n, 2] of (anchor k, size index m) -> total loss L [n] of each pair's inpaint."""


class GradientMode(str, Enum):
    EXACT = "exact"
    """Score all K x M pairs once; exact expected-loss gradient every iteration."""
    SAMPLED = "sampled"
    """Each iteration samples sizes from the RGN and scores only new pairs (REINFORCE); an anchor
    whose M sizes have all been scored switches to its exact gradient."""


class Adam:
    """torch.optim.Adam's update (no weight decay, no amsgrad), one state per array name."""

    def __init__(self, lr: float = 5e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if lr <= 0:
            raise InputError(f"learning rate {lr!r} must be > 0")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.step_count = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """New parameters (float64) after one step; the inputs are left unchanged."""
        b1, b2 = self.betas
        self.step_count += 1
        bc1, bc2 = 1.0 - b1**self.step_count, 1.0 - b2**self.step_count
        out = {}
        for name, value in params.items():
            g = np.asarray(grads[name], dtype=np.float64)
            self.m[name] = b1 * self.m.get(name, np.zeros_like(g)) + (1.0 - b1) * g
            self.v[name] = b2 * self.v.get(name, np.zeros_like(g)) + (1.0 - b2) * g * g
            denom = np.sqrt(self.v[name]) / np.sqrt(bc2) + self.eps
            out[name] = np.asarray(value, dtype=np.float64) - (self.lr / bc1) * self.m[name] / denom
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Moments under `m.<name>` / `v.<name>` (for checkpoints); `step_count` is kept apart."""
        return {**{f"m.{k}": v for k, v in self.m.items()}, **{f"v.{k}": v for k, v in self.v.items()}}

    def load_state(self, state: Mapping[str, np.ndarray], step_count: int) -> None:
        self.m = {k[2:]: np.asarray(v, dtype=np.float64) for k, v in state.items() if k.startswith("m.")}
        self.v = {k[2:]: np.asarray(v, dtype=np.float64) for k, v in state.items() if k.startswith("v.")}
        self.step_count = int(step_count)


def expected_loss_grad(log_probs: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """d/d(log_probs) of mean_k sum_m p_km L_km, for anchors with all M losses known ([K, M])."""
    probs = np.exp(np.asarray(log_probs, dtype=np.float64))
    return probs * np.asarray(losses, dtype=np.float64) / log_probs.shape[0]


def reinforce_grad(log_probs: np.ndarray, sizes: np.ndarray, losses: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """d/d(log_probs) of the score-function surrogate mean_k mean_s (L_ks - b_k) log p_k(sizes_ks).
    sizes, losses: [K, S] sampled size indices and their losses; baseline: [K]."""
    sizes = np.asarray(sizes, dtype=np.int64)
    k, s = sizes.shape
    advantage = np.asarray(losses, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)[:, None]
    grad = np.zeros(log_probs.shape, dtype=np.float64)
    np.add.at(grad, (np.repeat(np.arange(k), s), sizes.reshape(-1)), advantage.reshape(-1) / (k * s))
    return grad


def policy_grad(log_probs: np.ndarray, cache: np.ndarray, sizes: np.ndarray | None) -> np.ndarray:
    """The gradient `learn` uses: exact for anchors whose M losses are all in `cache` ([K, M],
    NaN = not scored), REINFORCE over the sampled `sizes` ([K, S]) with the anchor's mean scored
    loss as baseline otherwise."""
    complete = ~np.isnan(cache).any(axis=1)
    grad = np.zeros(log_probs.shape, dtype=np.float64)
    k = log_probs.shape[0]
    if complete.any():
        grad[complete] = expected_loss_grad(log_probs[complete], cache[complete]) * complete.sum() / k
    partial = np.flatnonzero(~complete)
    if partial.size:
        if sizes is None:
            raise InputError("anchors without all M losses need sampled sizes for the REINFORCE gradient")
        chosen = np.asarray(sizes, dtype=np.int64).reshape(k, -1)[partial]
        chosen_losses = cache[partial[:, None], chosen]
        baseline = np.nanmean(cache[partial], axis=1)
        grad[partial] = reinforce_grad(log_probs[partial], chosen, chosen_losses, baseline) * partial.size / k
    return grad


@dataclass(frozen=True)
class LearnResult:
    choices: np.ndarray
    """[K] argmax size of the learned RGN per anchor."""
    probabilities: np.ndarray
    """[K, M] the learned RGN's size distribution."""
    mean_loss: tuple[float, ...]
    """Per iteration: the expected loss mean_k sum_m p_km L_km (exact), or the mean loss of the
    sampled pairs (sampled), before that iteration's update."""
    losses: np.ndarray
    """[K, M] total loss of each scored pair, NaN where never scored."""
    pairs_scored: int
    params: rgn_numpy.RgnParams
    """The learned RGN (head updated, projection unchanged)."""


def learn_sizes(
    pooled: np.ndarray,
    params: rgn_numpy.RgnParams,
    losses: np.ndarray | PairScorer,
    *,
    iterations: int = 10,
    lr: float = 5e-3,
    mode: GradientMode = GradientMode.EXACT,
    samples: int = 1,
    seed: int = 0,
) -> LearnResult:
    """Adam on the numpy RGN for one image. `losses` is a [K, M] array of every pair's total loss
    (all scored) or a scorer called with the pairs not yet scored (each pair at most once).
    EXACT scores all K x M pairs in one call; SAMPLED draws `samples` sizes per anchor per
    iteration (seeded) and scores only the new ones."""
    pooled = np.asarray(pooled)
    k, m = pooled.shape[0], params.sizes
    if m < 2:
        raise InputError(f"learn needs at least 2 box sizes to choose between (got M={m}); give more half_sizes or use mode rgn")
    if iterations < 1:
        raise InputError(f"iterations={iterations!r} (expected an integer >= 1)")
    mode = GradientMode(mode)
    cache = np.full((k, m), np.nan)
    scorer = _scorer(losses, (k, m))
    rng = np.random.default_rng([seed, 0x1EA2])
    head, adam, history = {n: np.asarray(v, dtype=np.float64) for n, v in params.head.items()}, Adam(lr), []
    if mode is GradientMode.EXACT:
        _score(scorer, cache, np.argwhere(np.ones((k, m), dtype=bool)))
    for _ in range(iterations):
        fwd = rgn_numpy.forward(head, pooled)
        sizes = None
        if mode is GradientMode.SAMPLED:
            sizes = _sample(fwd.log_probs, samples, rng)
            pairs = np.stack([np.repeat(np.arange(k), samples), sizes.reshape(-1)], axis=1)
            _score(scorer, cache, pairs)
            history.append(float(cache[pairs[:, 0], pairs[:, 1]].mean()))
        else:
            history.append(float((np.exp(fwd.log_probs) * cache).sum(axis=1).mean()))
        grad = policy_grad(fwd.log_probs, cache, sizes)
        head = adam.step(head, rgn_numpy.backward(head, fwd, grad))
    final = rgn_numpy.forward(head, pooled).log_probs
    learned = params.with_head({n: v.astype(np.float32) for n, v in head.items()})
    return LearnResult(
        choices=np.argmax(final, axis=1).astype(np.int64),
        probabilities=np.exp(final),
        mean_loss=tuple(history),
        losses=cache,
        pairs_scored=int((~np.isnan(cache)).sum()),
        params=learned,
    )


def _scorer(losses, shape) -> PairScorer:
    if callable(losses):
        return losses
    table = np.asarray(losses, dtype=np.float64)
    if table.shape != shape:
        raise InputError(f"losses have shape {table.shape}; expected [K, M] = {list(shape)}")
    if not np.isfinite(table).all():
        raise InputError("losses hold NaN/Inf; every (anchor, size) pair needs a finite loss")
    return lambda pairs: table[pairs[:, 0], pairs[:, 1]]


def _score(scorer: PairScorer, cache: np.ndarray, pairs: np.ndarray) -> None:
    """Score the pairs not in the cache yet (each pair once) and store their losses."""
    pairs = np.unique(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=0)
    new = pairs[np.isnan(cache[pairs[:, 0], pairs[:, 1]])]
    if len(new) == 0:
        return
    values = np.asarray(scorer(new), dtype=np.float64).reshape(-1)
    if values.shape != (len(new),) or not np.isfinite(values).all():
        raise InputError(f"the pair scorer returned {values.shape} values (finite: {bool(np.isfinite(values).all())}) for {len(new)} pairs")
    cache[new[:, 0], new[:, 1]] = values
    log.debug("scored %d new (anchor, size) pairs", len(new))


def _sample(log_probs: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """[K, samples] size indices drawn from each anchor's distribution (Gumbel-max)."""
    if samples < 1:
        raise InputError(f"samples={samples!r} (expected an integer >= 1)")
    gumbel = -np.log(-np.log(rng.uniform(1e-20, 1.0, size=(*log_probs.shape[:1], samples, log_probs.shape[1]))))
    return np.argmax(log_probs[:, None, :] + gumbel, axis=-1)
