"""CLIP ranking of the K candidates: S = alpha * t2i + beta * i2i, with the code's top-N t2i guard."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankScores:
    t2i: np.ndarray
    """Cosine similarity of each candidate with the prompt, [K]."""
    i2i: np.ndarray
    """Cosine similarity of each candidate with the source image, [K]."""
    t2i_norm: np.ndarray
    i2i_norm: np.ndarray
    """The terms that enter the score (softmax over candidates, or the raw cosines)."""
    score: np.ndarray
    chosen: int
    eligible: np.ndarray
    """Indices allowed to win (the top-N by t2i)."""
    objective: np.ndarray | None = None
    """Each candidate's region loss L when the pick is by the objective (final_pick='objective'),
    which then chose the lowest; None when the ranking chose."""


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def rank_candidates(
    image_embeds: np.ndarray,
    source_embed: np.ndarray,
    text_embed: np.ndarray,
    *,
    alpha: float,
    beta: float,
    softmax: bool,
    top_t2i: int,
) -> RankScores:
    """Score K candidate embeddings [K, D] against the source image [D] and the prompt [D]."""
    cand = _unit(image_embeds)
    t2i = cand @ _unit(text_embed).reshape(-1)
    i2i = cand @ _unit(source_embed).reshape(-1)
    t_term, i_term = (_softmax(t2i), _softmax(i2i)) if softmax else (t2i, i2i)
    score = alpha * t_term + beta * i_term
    by_t2i = np.argsort(-t2i, kind="stable")
    eligible = by_t2i[:top_t2i] if top_t2i > 0 else by_t2i
    chosen = int(eligible[np.argmax(score[eligible])])
    return RankScores(t2i, i2i, t_term, i_term, score, chosen, np.sort(eligible))
