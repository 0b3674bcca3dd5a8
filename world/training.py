"""The training loop every world model shares: seeded per step, checkpointed often, resumable.

A step's data and noise come from generators seeded by (model seed, step), never from a stream
that runs across steps, so a run stopped after step n and resumed reaches the same weights as an
uninterrupted one: the checkpoint holds the model, the optimiser and the step count, nothing else.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """One model's training run."""

    name: str
    steps: int
    lr: float
    seed: int = 0
    checkpoint_every: int = 50
    """Steps between checkpoints (each is an atomic rename, so a killed run loses at most these)."""
    weight_decay: float = 0.0
    warmup: int = 50
    """Linear learning-rate warm-up steps; cosine decay to 10% after them."""


@dataclass(frozen=True)
class StepRng:
    """The step's generators: numpy for data, torch for noise."""

    numpy: np.random.Generator
    torch: torch.Generator
    step: int
    """The step these generators belong to (a curriculum reads it)."""


def step_rng(seed: int, step: int) -> StepRng:
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
    return StepRng(np.random.default_rng([seed, step, 7]), gen, step)


def lr_at(spec: RunSpec, step: int) -> float:
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    progress = (step - spec.warmup) / max(spec.steps - spec.warmup, 1)
    return spec.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0))))


def checkpoint_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}.ckpt.pt"


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, done: bool, seconds: float) -> None:
    tmp = path.with_suffix(".tmp")
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "done": done, "seconds": seconds}
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(spec: RunSpec, model: torch.nn.Module, loss_fn: Callable[[StepRng], torch.Tensor], folder: Path,
          *, progress: bool = True) -> dict:
    """Run `spec.steps` AdamW steps of `loss_fn` on `model`, resuming from `folder` if a checkpoint
    is there. Returns {'steps', 'seconds' (training wall time over all sessions), 'loss' (mean of
    the last 50 steps run here, or None)}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder, spec.name)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    start, seconds = 0, 0.0
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, seconds = state["step"], state["seconds"]
        log.info("%s: resumed at step %d of %d", spec.name, start, spec.steps)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(start, spec.steps), initial=start, total=spec.steps, desc=spec.name, disable=not progress, mininterval=5)
    began = time.perf_counter()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(spec, step)
        loss = loss_fn(step_rng(spec.seed, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if (step + 1) % spec.checkpoint_every == 0 or step + 1 == spec.steps:
            save_checkpoint(path, model, optimizer, step + 1, step + 1 == spec.steps, seconds + time.perf_counter() - began)
    seconds += time.perf_counter() - began
    model.eval()
    if start < spec.steps:
        log.info("%s: %d steps, %.0f s of training in all", spec.name, spec.steps, seconds)
    return {"steps": spec.steps, "seconds": round(seconds, 1), "loss": float(np.mean(losses[-50:])) if losses else None}
