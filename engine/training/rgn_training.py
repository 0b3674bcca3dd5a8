"""Training one RGN across many images (the paper's setting; `lr-train-rgn`).

Each image contributes its (anchor, size) losses, scored once and cached (they do not change
between epochs: the inpaints are deterministic), and one Adam step per image and epoch on the
exact expected loss mean_k sum_m p_km L_km. The checkpoint written after every epoch is a
safetensors RGN (`anchor_net.*`, `conv.*`) that `--rgn` loads, plus `optimizer.*` moments, the
cached loss tables (`losses.<image>`) and metadata, so `resume` continues exactly where the
last finished epoch left off without inpainting again.

Prompts file: one example per line, `image_name<TAB>prompt[<TAB>source caption]`; blank lines
and lines starting with `#` are skipped; image names are relative to the images folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lredit.engine.ops import rgn_numpy
from lredit.engine.ops.rgn_learning import Adam, PairScorer, expected_loss_grad
from lredit.errors import InputError
from lredit.rgn_checkpoint import load_rgn, save_rgn

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
KIND = "lr-train-rgn"


@dataclass(frozen=True)
class TrainExample:
    name: str
    image: Path
    prompt: str
    source_caption: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    """Passes over the examples (the paper's 5). Scoring happens in the first only."""
    lr: float = 3e-3
    """Adam learning rate (the paper's 0.003)."""
    seed: int = 0
    """Seeds the example order of every epoch."""


@dataclass(frozen=True)
class TrainResult:
    params: rgn_numpy.RgnParams
    epoch_loss: tuple[float, ...]
    """Mean expected loss over the examples, per epoch run (before each example's step)."""
    epochs_done: int
    scored_pairs: int
    """(anchor, size) pairs scored in this run (0 when every table came from the checkpoint)."""


Problem = Callable[[TrainExample], tuple[np.ndarray, PairScorer]]
"""example -> (pooled [K, M*c, l, l], scorer of its (anchor, size) pairs)."""


def read_examples(images_dir: Path, prompts_file: Path) -> list[TrainExample]:
    """Parse the prompts file against the images folder; InputError (one line) on any problem."""
    images_dir, prompts_file = Path(images_dir), Path(prompts_file)
    if not images_dir.is_dir():
        raise InputError(f"images folder not found: {images_dir}")
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in images_dir.iterdir() if p.is_file()):
        raise InputError(f"images folder {images_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if not prompts_file.is_file():
        raise InputError(f"prompts file not found: {prompts_file}")
    try:
        lines = prompts_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read prompts file {prompts_file}: {exc}") from None
    examples, missing = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
            raise InputError(f"{prompts_file}:{number}: expected 'image_name<TAB>prompt[<TAB>source caption]', got {line!r}")
        path = images_dir / fields[0]
        if not path.is_file():
            missing.append(fields[0])
        examples.append(TrainExample(fields[0], path, fields[1], (fields[2] or None) if len(fields) == 3 else None))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"{prompts_file} names {len(missing)} image(s) not in {images_dir}: {shown}")
    if not examples:
        raise InputError(f"prompts file {prompts_file} has no examples (lines 'image_name<TAB>prompt')")
    return examples


def examples_digest(examples: list[TrainExample]) -> str:
    text = json.dumps([[e.name, e.prompt, e.source_caption] for e in examples])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_rgn(
    examples: list[TrainExample],
    init: rgn_numpy.RgnParams,
    problem: Problem,
    out: Path,
    config: TrainConfig = TrainConfig(),
    *,
    resume: bool = False,
    on_example: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train `init` on `examples` for config.epochs, checkpointing to `out` after every epoch.
    With `resume`, `out` must be a checkpoint of this run (same examples and lr) and training
    continues after its last epoch. `on_example(done, total)` reports progress."""
    if config.epochs < 1 or config.lr <= 0:
        raise InputError(f"epochs={config.epochs!r} must be >= 1 and lr={config.lr!r} > 0")
    if init.sizes < 2:
        raise InputError(f"training needs at least 2 box sizes to choose between (got M={init.sizes})")
    digest = examples_digest(examples)
    params, adam, tables, start = init, Adam(config.lr), {}, 0
    if resume:
        params, adam, tables, start = _resume(Path(out), init, digest, config)
    head = {n: np.asarray(v, dtype=np.float64) for n, v in params.head.items()}
    pooled_cache: dict[str, np.ndarray] = {}
    epoch_loss, scored, total = [], 0, len(examples) * (config.epochs - start)
    for epoch in range(start, config.epochs):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(examples))
        losses_seen = []
        for step, index in enumerate(order):
            example = examples[index]
            pooled, table, new = _problem(example, problem, pooled_cache, tables, params.sizes)
            scored += new
            fwd = rgn_numpy.forward(head, pooled)
            losses_seen.append(float((np.exp(fwd.log_probs) * table).sum(axis=1).mean()))
            head = adam.step(head, rgn_numpy.backward(head, fwd, expected_loss_grad(fwd.log_probs, table)))
            if on_example:
                on_example((epoch - start) * len(examples) + step + 1, total)
        epoch_loss.append(float(np.mean(losses_seen)))
        # the checkpoint holds float32 weights: continue from exactly those, so a resumed run
        # computes what an uninterrupted one does
        params = params.with_head({n: v.astype(np.float32) for n, v in head.items()})
        head = {n: np.asarray(v, dtype=np.float64) for n, v in params.head.items()}
        _checkpoint(Path(out), params, adam, tables, epoch + 1, digest, config)
        log.info("epoch %d/%d: mean expected loss %.5f", epoch + 1, config.epochs, epoch_loss[-1])
    return TrainResult(params, tuple(epoch_loss), config.epochs, scored)


def _problem(example: TrainExample, problem: Problem, pooled_cache: dict, tables: dict, m: int):
    """(pooled, [K, M] losses, pairs scored now) for one example, scoring only on first sight."""
    if example.name in pooled_cache and example.name in tables:
        return pooled_cache[example.name], tables[example.name], 0
    pooled, scorer = problem(example)
    pooled_cache[example.name] = pooled
    if example.name in tables:
        return pooled, tables[example.name], 0
    k = pooled.shape[0]
    pairs = np.argwhere(np.ones((k, m), dtype=bool))
    table = np.asarray(scorer(pairs), dtype=np.float64).reshape(k, m)
    if not np.isfinite(table).all():
        raise InputError(f"image {example.name}: the scorer returned NaN/Inf losses")
    tables[example.name] = table
    return pooled, table, k * m


def _checkpoint(out: Path, params, adam: Adam, tables: dict, epochs_done: int, digest: str, config: TrainConfig) -> None:
    extra = {f"optimizer.{k}": v.astype(np.float64) for k, v in adam.state().items()}
    extra.update({f"losses.{name}": table for name, table in tables.items()})
    metadata = {"kind": KIND, "epochs_done": str(epochs_done), "epochs": str(config.epochs), "lr": repr(config.lr),
                "seed": str(config.seed), "adam_steps": str(adam.step_count), "examples": digest}
    save_rgn(out, params, metadata, extra)


def _resume(out: Path, init: rgn_numpy.RgnParams, digest: str, config: TrainConfig):
    if not out.is_file():
        raise InputError(f"--resume: no checkpoint at {out} (run without --resume to start)")
    loaded = load_rgn(out, (init.projection_weight, init.projection_bias), sizes=init.sizes,
                      channels=init.channels, roi_size=init.roi_size)
    meta = loaded.metadata
    if meta.get("kind") != KIND:
        raise InputError(f"--resume: {out} is an RGN checkpoint but not one lr-train-rgn wrote (no training state)")
    if meta.get("examples") != digest or float(meta.get("lr", "nan")) != config.lr or int(meta.get("seed", -1)) != config.seed:
        raise InputError(f"--resume: {out} was trained with other examples, lr or seed; start a new checkpoint instead")
    adam = Adam(config.lr)
    adam.load_state({k[len("optimizer.") :]: v for k, v in loaded.extra.items() if k.startswith("optimizer.")},
                    int(meta["adam_steps"]))
    tables = {k[len("losses.") :]: v.astype(np.float64) for k, v in loaded.extra.items() if k.startswith("losses.")}
    done = int(meta["epochs_done"])
    log.info("resuming %s after epoch %d (%d cached loss tables)", out, done, len(tables))
    return loaded.params, adam, tables, min(done, config.epochs)
