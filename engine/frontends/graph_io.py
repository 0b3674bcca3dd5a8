"""Graph I/O recording and replay, for the C++ host (cpp) and its host-overhead benchmark.

`record_edit` runs one edit with every graph call's inputs and outputs written to a folder
(`lr-edit --dump-graph-io DIR`): one .npy per tensor (float32, int64 or uint8, C order) and an
`index.json` that lists the calls in order, the token ids and initial noise the edit used, its
config and its result (anchors, boxes, sizes, scores, chosen, and report.json's `regions`: mode,
losses, pruning phases, chosen sizes). The C++ ReplayRunner serves the
recorded outputs and compares each input the C++ host feeds against the recorded one.

`ReplaySession` is the same idea in Python: it serves a recording from memory, so that an edit's
host time (edit time minus time inside the sessions) can be measured without running graphs.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from lredit.atomic import write_bytes_atomic, write_json_atomic
from lredit.engine.core.pipeline import EditPipeline, EditResult
from lredit.engine.ops.arrays import to_host
from lredit.engine.ops.noise import initial_noise

FORMAT = "lredit-graph-io"
VERSION = 1


def _host_array(value) -> np.ndarray:
    array = np.ascontiguousarray(to_host(value))
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    if np.issubdtype(array.dtype, np.integer) and array.dtype != np.uint8:
        return array.astype(np.int64, copy=False)
    return array


class _Recorder:
    """Holds the calls of one edit and writes their tensors as they come."""

    def __init__(self, out: Path):
        self.out = out
        self.calls: list[dict] = []
        self.tokens: dict[str, list[dict]] = {"sd": [], "clip": []}
        self.seconds = 0.0

    def save(self, name: str, value) -> str:
        write_bytes_atomic(self.out / name, _npy_bytes(_host_array(value)))
        return name

    def record(self, graph: str, feeds: Mapping, outputs: Mapping) -> None:
        i = len(self.calls)
        self.calls.append(
            {
                "graph": graph,
                "inputs": {k: self.save(f"{i:04d}_{graph}_in_{k}.npy", v) for k, v in feeds.items()},
                "outputs": {k: self.save(f"{i:04d}_{graph}_out_{k}.npy", v) for k, v in outputs.items()},
            }
        )


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class _RecordingSession:
    def __init__(self, graph: str, session, recorder: _Recorder):
        self.graph, self.session, self.recorder = graph, session, recorder
        self.input_names, self.output_names = session.input_names, session.output_names

    def run(self, feeds):
        start = time.perf_counter()
        outputs = self.session.run(feeds)
        self.recorder.seconds += time.perf_counter() - start
        self.recorder.record(self.graph, feeds, outputs)
        return outputs


class _RecordingTokenizer:
    def __init__(self, which: str, tokenizer, recorder: _Recorder):
        self.which, self.tokenizer, self.recorder = which, tokenizer, recorder
        self.max_length = tokenizer.max_length

    def encode(self, text: str):
        tokens = self.tokenizer.encode(text)
        self.recorder.tokens[self.which].append(
            {"text": text, "ids": [int(i) for i in tokens.ids], "token_count": int(tokens.token_count),
             "truncated": bool(tokens.truncated)}
        )
        return tokens


def record_edit(pipeline: EditPipeline, image, prompt: str, out: Path, source_caption: str | None = None, *,
                on_step=None, **overrides) -> EditResult:
    """Run `pipeline.edit` with every graph call recorded under `out` (see the module docstring)."""
    from lredit.engine.ops.images import load_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recorder = _Recorder(out)
    recording = pipeline.with_sessions(
        {g: _RecordingSession(g, s, recorder) for g, s in pipeline.sessions.items()},
        dataclasses.replace(
            pipeline.assets,
            clip_tokenizer=_RecordingTokenizer("clip", pipeline.assets.clip_tokenizer, recorder),
            sd_tokenizer=_RecordingTokenizer("sd", pipeline.assets.sd_tokenizer, recorder),
        ),
    )
    img = load_image(image)
    start = time.perf_counter()
    result = recording.edit(img, prompt, source_caption, on_step=on_step, **overrides)
    seconds = time.perf_counter() - start
    cfg = result.config
    latent = cfg.working_size // pipeline.assets.vae_scale_factor
    shape = (pipeline.assets.latent_channels, latent, latent)
    noise = []
    for k, m in enumerate(result.size_index.tolist()):
        noise.append({"anchor": k, "size": int(m), "file": recorder.save(f"noise_{k:02d}.npy", initial_noise(cfg.seed, k, int(m), shape))})
    index = {
        "format": FORMAT,
        "version": VERSION,
        "prompt": prompt,
        "source_caption": source_caption,
        "config": cfg.to_report(),
        "image": recorder.save("image.npy", np.asarray(img, dtype=np.uint8)),
        "calls": recorder.calls,
        "tokens": recorder.tokens,
        "noise": noise,
        "result": {
            "anchors": result.anchors.tolist(),
            "boxes_cells": result.boxes_cells.tolist(),
            "size_index": result.size_index.tolist(),
            "boxes_px": result.boxes_px.tolist(),
            "t2i": result.scores.t2i.tolist(),
            "i2i": result.scores.i2i.tolist(),
            "score": result.scores.score.tolist(),
            "chosen": result.chosen,
            "candidates": recorder.save("candidates.npy", np.stack([np.asarray(c) for c in result.candidates])),
            "regions": None if result.regions is None else result.regions.to_report(),
        },
        "edit_seconds": seconds,
        "graph_seconds": recorder.seconds,
    }
    write_json_atomic(out / "index.json", index)
    return result


class ReplaySession:
    """A graph session that serves one graph's recorded outputs in order, from memory."""

    def __init__(self, outputs: list[dict[str, np.ndarray]]):
        self.outputs = outputs
        self.cursor = 0
        self.input_names = ()
        self.output_names = tuple(outputs[0]) if outputs else ()

    def run(self, feeds) -> dict[str, np.ndarray]:
        out = self.outputs[self.cursor % len(self.outputs)]
        self.cursor += 1
        return {k: v.copy() for k, v in out.items()}


def replay_sessions(dump: Path) -> dict[str, ReplaySession]:
    """Sessions that replay the recording in `dump` (every call's outputs read into memory)."""
    dump = Path(dump)
    index = json.loads((dump / "index.json").read_text())
    per_graph: dict[str, list] = {}
    for call in index["calls"]:
        per_graph.setdefault(call["graph"], []).append({k: np.load(dump / f) for k, f in call["outputs"].items()})
    return {g: ReplaySession(outs) for g, outs in per_graph.items()}
