"""The one timing loop of lredit: warm-up runs apart, then R timed runs; per-stage and end-to-end
percentiles; peak host RSS and peak device memory sampled while the runs go on.

Every backend and every peer is measured by `measure`, so no two loops can drift apart. Stage
times come from the pipeline's own StageTimer (perf_counter around each stage; each stage ends
with its outputs on the host, so wall time is the device time plus the copy).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

PERCENTILES = {"min": 0, "p50": 50, "p90": 90, "max": 100}


def summarize(values_ms: list[float]) -> dict[str, float]:
    """min / p50 / p90 / max of a list of milliseconds (linear interpolation between runs)."""
    arr = np.asarray(values_ms, dtype=np.float64)
    return {name: round(float(np.percentile(arr, q)), 3) for name, q in PERCENTILES.items()}


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the process's lifetime peak is the best there is
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _device_used_bytes() -> Callable[[], int] | None:
    """Device-wide used memory via cudaMemGetInfo (any backend's allocations), or None."""
    try:
        from cuda.bindings import runtime as cudart

        status, _, _ = cudart.cudaMemGetInfo()
    except (ImportError, RuntimeError, OSError):  # no bindings, no libcudart, no driver
        return None
    if status != cudart.cudaError_t.cudaSuccess:
        return None

    def used() -> int:
        _, free, total = cudart.cudaMemGetInfo()
        return int(total - free)

    return used


class MemorySampler:
    """Samples RSS (and device memory where a GPU is visible) every `interval` s in a thread."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_rss = rss_bytes()
        self._device = _device_used_bytes()
        self.peak_device = self._device() if self._device else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        self.peak_rss = max(self.peak_rss, rss_bytes())
        if self._device:
            self.peak_device = max(self.peak_device, self._device())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass
class Measurement:
    runs_ms: list[float] = field(default_factory=list)
    """End to end, per timed run."""
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    warmup_ms: list[float] = field(default_factory=list)
    peak_rss_bytes: int = 0
    peak_device_bytes: int | None = None

    def stage_summary(self) -> dict[str, dict[str, float]]:
        return {name: summarize(values) for name, values in self.stages_ms.items()}


def measure(run_once: Callable[[], dict[str, float]], *, runs: int, warmup: int,
            on_run: Callable[[str, int], None] | None = None) -> Measurement:
    """Call `run_once` warmup + runs times. It returns its stage times in ms; the loop times the
    whole call itself. Warm-up runs (first-run costs: allocation, autotuning) are kept apart."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs={runs}, warmup={warmup}: need runs >= 1 and warmup >= 0")
    result = Measurement()
    for i in range(warmup):
        start = time.perf_counter()
        run_once()
        result.warmup_ms.append(round((time.perf_counter() - start) * 1000.0, 3))
        if on_run:
            on_run("warmup", i + 1)
    with MemorySampler() as memory:
        for i in range(runs):
            start = time.perf_counter()
            stages = run_once()
            result.runs_ms.append((time.perf_counter() - start) * 1000.0)
            for name, ms in stages.items():
                result.stages_ms.setdefault(name, []).append(float(ms))
            if on_run:
                on_run("run", i + 1)
    result.peak_rss_bytes = memory.peak_rss
    result.peak_device_bytes = memory.peak_device
    return result
