"""A torch call replayed from captured CUDA graphs, one graph per input signature.

A denoising loop calls the UNet 50 times with the same shapes; replaying a captured graph turns
its ~1,000 kernel launches per call into one. Each signature (shapes, strides, dtypes: the row
count, in practice) gets its own graph, captured on first sight into one shared memory pool, so
pruning (fewer rows from a phase on) captures a few more, never one per step. Inputs are copied
into the graph's static buffers; outputs are cloned, because the next replay overwrites them.

The capture itself is a parameter, so the buffer logic is tested on machines without a GPU
(tests/engine/runtimes/test_torch_cuda.py) with a capture that re-runs the call eagerly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

log = logging.getLogger(__name__)

WARMUP_CALLS = 2
"""Eager calls on a side stream before capture: cuDNN/cuBLAS choose and cache their algorithms
(and torch.compile compiles) outside the graph."""

Capture = Callable[[Callable, Sequence[torch.Tensor]], tuple[Callable[[], None], tuple[torch.Tensor, ...]]]
"""(call, static inputs) -> (replay, static outputs): replay() recomputes the outputs in place."""


def as_tuple(outputs) -> tuple[torch.Tensor, ...]:
    return (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)


def cuda_graph_capture(pool=None) -> Capture:
    """torch.cuda graphs; every graph of one capture function shares `pool` (a new one if None)."""
    pool = torch.cuda.graph_pool_handle() if pool is None else pool

    def capture(call: Callable, static: Sequence[torch.Tensor]):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                call(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: lr-bench's memory sampler thread may query the device during a capture.
        with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
            outputs = as_tuple(call(*static))
        return graph.replay, outputs  # the bound method keeps the graph alive

    return capture


@dataclass(frozen=True)
class Captured:
    inputs: tuple[torch.Tensor, ...]
    outputs: tuple[torch.Tensor, ...]
    replay: Callable[[], None]


class GraphedCall:
    """`call(*tensors)` replayed from a captured graph per input signature. Past `max_graphs`
    signatures it runs eagerly (said once in the log) rather than hold more graph memory."""

    def __init__(self, call: Callable, capture: Capture, max_graphs: int = 8):
        self.call, self.capture, self.max_graphs = call, capture, max_graphs
        self.graphs: dict[tuple, Captured] = {}
        self.eager_calls = 0

    @staticmethod
    def signature(args: Sequence[torch.Tensor]) -> tuple:
        return tuple((tuple(a.shape), a.stride(), a.dtype, a.device) for a in args)

    def __call__(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        key = self.signature(args)
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= self.max_graphs:
                if not self.eager_calls:
                    log.warning("graph replay: %d signatures captured already; %s runs eagerly", self.max_graphs, key)
                self.eager_calls += 1
                return as_tuple(self.call(*args))
            entry = self._capture(key, args)
        for static, value in zip(entry.inputs, args):
            static.copy_(value)
        entry.replay()
        return tuple(out.clone() for out in entry.outputs)

    def _capture(self, key: tuple, args: Sequence[torch.Tensor]) -> Captured:
        static = tuple(a.clone() for a in args)  # clone keeps the memory format (channels-last)
        replay, outputs = self.capture(self.call, static)
        entry = Captured(static, outputs, replay)
        self.graphs[key] = entry
        log.info("graph replay: captured signature %d: %s", len(self.graphs), [tuple(a.shape) for a in args])
        return entry
