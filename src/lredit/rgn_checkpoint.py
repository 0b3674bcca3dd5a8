"""The RGN's weights in numpy (`RgnParams`) and their checkpoints: safetensors with the authors'
key names, written and read without torch; the authors' `.pt` checkpoints read where torch is
installed. In the root package so that export (which writes the bundle's rgn.safetensors and
loads checkpoints into the torch RGN) and engine (the numpy RGN) share one format.

Keys: `anchor_net.<i>.weight|bias` (the head, Sequential indices 0, 2, 5, 7) and
`conv.weight|bias` (the 1x1 projection d -> c, weight [c, d, 1, 1]), as the authors' RGN module
names them; a `module.` prefix (DataParallel) and a `state_dict` wrapper are accepted. A
checkpoint with the head only (the authors' loader reads only `anchor_net.*`) keeps the seeded
projection, and says so. Training checkpoints of lr-train-rgn add `optimizer.*` tensors and
metadata; loaders ignore them.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import safetensors_io
from .errors import InputError, ModelSourceError, OutputError

log = logging.getLogger(__name__)

SAFETENSORS_SUFFIX = ".safetensors"


HEAD_KEYS = ("0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias", "7.weight", "7.bias")
HEAD_PREFIX = "anchor_net."
PROJECTION_PREFIX = "conv."


@dataclass(frozen=True)
class RgnParams:
    """One RGN: the head (authors' `anchor_net.<i>.*`, conv weights as [out, in, 1, 1]) and the
    1x1 projection (authors' `conv.*`, weight [c, d, 1, 1])."""

    head: Mapping[str, np.ndarray]
    projection_weight: np.ndarray
    """[c, d] (the conv's trailing 1x1 dropped)."""
    projection_bias: np.ndarray
    """[c]."""

    def __post_init__(self) -> None:
        check_head(self.head)
        c = self.head["0.weight"].shape[1] // self.sizes
        if self.projection_weight.ndim != 2 or self.projection_weight.shape[0] != c or self.projection_bias.shape != (c,):
            raise InputError(
                f"RGN projection has weight {self.projection_weight.shape} and bias {self.projection_bias.shape}; "
                f"the head takes {self.sizes} sizes x {c} channels, so [{c}, d] and [{c}] were expected"
            )

    @property
    def sizes(self) -> int:
        return int(self.head["7.weight"].shape[0])

    @property
    def channels(self) -> int:
        return int(self.projection_weight.shape[0])

    @property
    def roi_size(self) -> int:
        return round(float(np.sqrt(self.head["5.weight"].shape[1] / 4)))

    @property
    def feature_dim(self) -> int:
        return int(self.projection_weight.shape[1])

    def with_head(self, head: Mapping[str, np.ndarray]) -> RgnParams:
        return RgnParams(dict(head), self.projection_weight, self.projection_bias)

    def state_dict(self) -> dict[str, np.ndarray]:
        """float32 arrays under the authors' key names (`anchor_net.*`, `conv.*`)."""
        state = {HEAD_PREFIX + k: np.asarray(v, dtype=np.float32) for k, v in self.head.items()}
        state[PROJECTION_PREFIX + "weight"] = np.asarray(self.projection_weight, dtype=np.float32)[:, :, None, None]
        state[PROJECTION_PREFIX + "bias"] = np.asarray(self.projection_bias, dtype=np.float32)
        return state


def check_head(head: Mapping[str, np.ndarray]) -> None:
    """The eight arrays exist and their shapes chain; raise InputError naming the first misfit."""
    missing = [k for k in HEAD_KEYS if k not in head]
    if missing:
        raise InputError(f"RGN head lacks {missing}")
    w0, w2, w5, w7 = (np.asarray(head[k]) for k in ("0.weight", "2.weight", "5.weight", "7.weight"))
    checks = [
        (w0.ndim == 4 and w0.shape[2:] == (1, 1), "0.weight", "[8, M*c, 1, 1]", w0.shape),
        (w2.ndim == 4 and w2.shape[1] == w0.shape[0] and w2.shape[2:] == (1, 1), "2.weight", f"[4, {w0.shape[0]}, 1, 1]", w2.shape),
        (w5.ndim == 2 and w5.shape[1] % w2.shape[0] == 0, "5.weight", f"[4, {w2.shape[0]}*l*l]", w5.shape),
        (w7.ndim == 2 and w7.shape[1] == w5.shape[0] and w0.shape[1] % max(w7.shape[0], 1) == 0, "7.weight", "[M, 4]", w7.shape),
    ]
    for ok, key, want, got in checks:
        if not ok:
            raise InputError(f"RGN head {key} has shape {tuple(got)}; expected {want}")
    for layer in ("0", "2", "5", "7"):
        bias = np.asarray(head[f"{layer}.bias"])
        if bias.shape != (np.asarray(head[f"{layer}.weight"]).shape[0],):
            raise InputError(f"RGN head {layer}.bias has shape {bias.shape}; expected ({np.asarray(head[f'{layer}.weight']).shape[0]},)")


@dataclass(frozen=True)
class LoadedRgn:
    params: RgnParams
    has_projection: bool
    """False: the file held only the head; the projection is the seeded one passed in."""
    metadata: dict
    extra: dict
    """Tensors other than the RGN's (e.g. lr-train-rgn's `optimizer.*`)."""
    warnings: tuple[str, ...] = ()


def save_rgn(path: Path, params: RgnParams, metadata: Mapping[str, str] | None = None,
             extra: Mapping[str, np.ndarray] | None = None) -> None:
    """Write `params` (+ `extra` tensors, + string metadata) as safetensors, atomically."""
    tensors = params.state_dict()
    clash = sorted(set(tensors) & set(extra or {}))
    if clash:
        raise InputError(f"extra checkpoint tensors reuse RGN key names {clash}")
    try:
        safetensors_io.save_file(Path(path), {**tensors, **(extra or {})}, {"format": "lredit-rgn", **(metadata or {})})
    except OSError as exc:
        raise OutputError(f"cannot write RGN checkpoint {path}: {exc.strerror or exc}") from None


def check_writable(path: Path) -> None:
    """Fail now (OutputError) if `path` cannot be written: before any inpainting is spent."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"--save-rgn {path} is a folder; give a file name such as {path / 'rgn.safetensors'}")
    if path.suffix != SAFETENSORS_SUFFIX:
        raise OutputError(f"--save-rgn {path}: RGN checkpoints are written as safetensors; name the file *{SAFETENSORS_SUFFIX}")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"--save-rgn {path}: cannot write into {parent}: {exc.strerror or exc}") from None


def read_state(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The file's tensors as float arrays with `module.` and a `state_dict` wrapper removed, and
    its metadata. safetensors needs only numpy; `.pt` needs torch."""
    path = Path(path)
    if not path.is_file():
        raise ModelSourceError(f"RGN checkpoint not found: {path}")
    if path.suffix == SAFETENSORS_SUFFIX:
        try:
            state, metadata = safetensors_io.load_file(path)
        except InputError as exc:
            raise ModelSourceError(f"cannot read RGN checkpoint {path}: {exc}") from None
    else:
        state, metadata = _read_torch(path), {}
    return {(k.removeprefix("module.")): v for k, v in state.items()}, metadata


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ModelSourceError(
            f"RGN checkpoint {path} is a torch file and torch is not installed: convert it once where torch is "
            f"(lr-train-rgn --convert {path} --save-rgn rgn.safetensors) or install lredit[export]"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file; all mean "unreadable"
        raise ModelSourceError(f"cannot read RGN checkpoint {path}: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelSourceError(f"RGN checkpoint {path} holds a {type(state).__name__}, not a state dict")
    return {k: v.detach().float().cpu().numpy() for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_rgn(path: Path, seeded_projection: tuple[np.ndarray, np.ndarray], *, sizes: int | None = None,
             channels: int | None = None, roi_size: int | None = None) -> LoadedRgn:
    """The RGN of a checkpoint. `seeded_projection` (weight [c, d], bias [c]) is used when the
    file holds only the head; `sizes`/`channels`/`roi_size`, when given, must match the file."""
    path = Path(path)
    state, metadata = read_state(path)
    head = {k[len(HEAD_PREFIX) :]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    if not head:
        sample = ", ".join(list(state)[:5])
        raise ModelSourceError(f"RGN checkpoint {path} has no 'anchor_net.*' keys (found: {sample} ...)")
    unexpected = sorted(set(head) - set(HEAD_KEYS))
    missing = sorted(set(HEAD_KEYS) - set(head))
    if missing or unexpected:
        raise ModelSourceError(f"RGN checkpoint {path}: head keys missing {missing}, unexpected {unexpected}")
    warnings: list[str] = []
    if f"{PROJECTION_PREFIX}weight" in state and f"{PROJECTION_PREFIX}bias" in state:
        weight = state[f"{PROJECTION_PREFIX}weight"]
        projection = (weight.reshape(weight.shape[0], -1), state[f"{PROJECTION_PREFIX}bias"])
        has_projection = True
    else:
        projection, has_projection = seeded_projection, False
        warnings.append(
            f"RGN checkpoint {path.name} holds only the head (anchor_net.*), no conv.* projection: "
            "the seeded projection (proj_seed) is kept"
        )
        log.warning(warnings[-1])
    try:
        params = RgnParams(head, np.asarray(projection[0], dtype=np.float32), np.asarray(projection[1], dtype=np.float32))
    except InputError as exc:
        raise ModelSourceError(f"RGN checkpoint {path}: {exc}") from None
    _check_geometry(path, params, sizes, channels, roi_size, seeded_projection[0].shape[1])
    extra = {k: v for k, v in state.items() if not k.startswith((HEAD_PREFIX, PROJECTION_PREFIX))}
    return LoadedRgn(params, has_projection, metadata, extra, tuple(warnings))


def _check_geometry(path: Path, params: RgnParams, sizes, channels, roi_size, feature_dim: int) -> None:
    wanted = {"M": (sizes, params.sizes), "c": (channels, params.channels), "l": (roi_size, params.roi_size),
              "d": (feature_dim, params.feature_dim)}
    wrong = [f"{name}={got} (expected {want})" for name, (want, got) in wanted.items() if want is not None and want != got]
    if wrong:
        raise ModelSourceError(f"RGN checkpoint {path} does not fit this pipeline: " + ", ".join(wrong))
