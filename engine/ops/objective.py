"""The per-image objective of the learnable regions (the paper's RGN loss), in numpy.

For a candidate X_o of source X, edit prompt T and optional source caption T_roi, with CLIP's
encoders E_v (`clip_vision`'s `image_embeds`) and E_t (`clip_text`'s `text_embeds`):

    L_clip = 1 - cos(E_v(X_o), E_t(T))
    L_dir  = 1 - cos(E_v(X_o) - E_v(X), E_t(T) - E_t(T_roi))      (only with a source caption)
    L_str  = mean((Q(X_o) - Q(X))^2)
    L      = w_clip L_clip + w_str L_str + w_dir L_dir              (all weights 1 by default)

Q is the cosine self-similarity matrix of `clip_vision`'s `tokens`: the residual stream after all
but the last encoder block (the authors' `resblocks[:-1]`), before any LayerNorm, **including the
[CLS] token** as the authors' `calculate_self_sim` does ([1+P, 1+P] per image); cosines divide by
max(|x| |y|, 1e-8) as their `attn_cosine_sim`.

Choices that differ from the authors' code, on purpose:
- Deterministic: no augmentation, one view; every image goes through CLIP's own preprocessing
  (`images.clip_pixels`: bicubic short side 224, centre crop, CLIP mean/std). The authors feed
  0..255 outputs against a 0..1 source and average over 16 random augmentations.
- T and T_roi are both wrapped in the edit's prompt template ("a high quality image of {prompt}.")
  before E_t (`objective_texts`): the direction E_t(T) - E_t(T_roi) then measures the change of
  content, not a change of template. The authors template T with random prompt templates and
  leave T_roi bare.
- Cosines as torch's `cosine_similarity` (each norm clamped at 1e-8), so an unchanged candidate
  (E_v(X_o) = E_v(X)) gives L_dir = 1 rather than NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lredit.errors import InputError

EPS = 1e-8


@dataclass(frozen=True)
class LossTerms:
    """Per-candidate loss terms, float64 [N] each."""

    clip: np.ndarray
    str: np.ndarray
    dir: np.ndarray | None
    """None without a source caption (L_dir left out of the total)."""
    total: np.ndarray

    def entry(self, i: int) -> dict:
        """One candidate's terms as a JSON-ready dict (for report.json)."""
        return {
            "clip": float(self.clip[i]),
            "str": float(self.str[i]),
            "dir": None if self.dir is None else float(self.dir[i]),
            "total": float(self.total[i]),
        }


@dataclass(frozen=True)
class RegionObjective:
    """L = clip * L_clip + str * L_str + dir * L_dir (dir dropped without a source caption)."""

    clip: float = 1.0
    str: float = 1.0
    dir: float = 1.0

    def __post_init__(self) -> None:
        bad = [f"{n}={getattr(self, n)!r}" for n in ("clip", "str", "dir") if not (np.isfinite(getattr(self, n)) and getattr(self, n) >= 0)]
        if bad:
            raise InputError(f"objective weights must be finite and >= 0: {', '.join(bad)}")

    def losses(
        self,
        candidate_embeds: np.ndarray,
        candidate_tokens: np.ndarray,
        source_embed: np.ndarray,
        source_tokens: np.ndarray,
        text_embed: np.ndarray,
        roi_text_embed: np.ndarray | None,
    ) -> LossTerms:
        """candidate_embeds [N, p], candidate_tokens [N, 1+P, D] (clip_vision of the candidates);
        source_embed [p] and source_tokens [1+P, D] (of the source; a leading batch axis of 1 is
        accepted); text_embed [p] = E_t(T); roi_text_embed [p] = E_t(T_roi) or None."""
        cand = _batch(candidate_embeds, 2, "candidate_embeds")
        tokens = _batch(candidate_tokens, 3, "candidate_tokens")
        src = _single(source_embed, 1, "source_embed")
        src_tokens = _single(source_tokens, 2, "source_tokens")
        text = _single(text_embed, 1, "text_embed")
        if tokens.shape[0] != cand.shape[0]:
            raise InputError(f"candidate_tokens has {tokens.shape[0]} candidates, candidate_embeds {cand.shape[0]}")
        if tokens.shape[1:] != src_tokens.shape:
            raise InputError(f"candidate tokens {tokens.shape[1:]} and source tokens {src_tokens.shape} differ in shape")
        if not (cand.shape[1] == src.shape[0] == text.shape[0]):
            raise InputError(f"embedding widths differ: candidates {cand.shape[1]}, source {src.shape[0]}, text {text.shape[0]}")
        clip = clip_loss(cand, text)
        structure = structure_loss(tokens, src_tokens)
        direction = None
        if roi_text_embed is not None:
            roi = _single(roi_text_embed, 1, "roi_text_embed")
            direction = direction_loss(cand, src, text, roi)
        total = self.clip * clip + self.str * structure + (self.dir * direction if direction is not None else 0.0)
        return LossTerms(clip, structure, direction, total)


def objective_texts(prompt: str, source_caption: str | None, template: str) -> tuple[str, str | None]:
    """(T, T_roi) as E_t sees them: both wrapped in the edit's prompt template (see the module
    docstring); T_roi is None without a caption (an empty caption counts as none)."""
    caption = source_caption.strip() if source_caption else ""
    return template.format(prompt=prompt), (template.format(prompt=caption) if caption else None)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine along the last axis, each norm clamped at EPS (torch's cosine_similarity)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na = np.maximum(np.linalg.norm(a, axis=-1), EPS)
    nb = np.maximum(np.linalg.norm(b, axis=-1), EPS)
    return (a * b).sum(axis=-1) / (na * nb)


def clip_loss(candidate_embeds: np.ndarray, text_embed: np.ndarray) -> np.ndarray:
    """[N]: 1 - cos(E_v(X_o), E_t(T))."""
    return 1.0 - cosine(candidate_embeds, text_embed[None])


def direction_loss(candidate_embeds, source_embed, text_embed, roi_text_embed) -> np.ndarray:
    """[N]: 1 - cos(E_v(X_o) - E_v(X), E_t(T) - E_t(T_roi))."""
    image_dir = np.asarray(candidate_embeds, dtype=np.float64) - np.asarray(source_embed, dtype=np.float64)[None]
    text_dir = np.asarray(text_embed, dtype=np.float64) - np.asarray(roi_text_embed, dtype=np.float64)
    return 1.0 - cosine(image_dir, text_dir[None])


def self_similarity(tokens: np.ndarray) -> np.ndarray:
    """[..., T, D] -> [..., T, T]: x_i . x_j / max(|x_i| |x_j|, 1e-8) (the authors' attn_cosine_sim)."""
    x = np.asarray(tokens, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1)
    gram = x @ np.swapaxes(x, -1, -2)
    return gram / np.maximum(norm[..., :, None] * norm[..., None, :], EPS)


def structure_loss(candidate_tokens: np.ndarray, source_tokens: np.ndarray) -> np.ndarray:
    """[N]: mean over the [T, T] entries of (Q(X_o) - Q(X))^2."""
    diff = self_similarity(candidate_tokens) - self_similarity(source_tokens)[None]
    return (diff**2).mean(axis=(-2, -1))


def _batch(x, ndim: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != ndim or x.shape[0] < 1:
        raise InputError(f"{name} has shape {x.shape}; expected {ndim} axes with candidates first")
    return x


def _single(x, ndim: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == ndim + 1 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != ndim:
        raise InputError(f"{name} has shape {x.shape}; expected {ndim} axes (one image or text)")
    return x
