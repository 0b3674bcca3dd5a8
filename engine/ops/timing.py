"""Named stage timers: wall time per stage (perf_counter), accumulated across repeats."""

from __future__ import annotations

import time
from contextlib import contextmanager


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def absorb(self, other: "StageTimer") -> None:
        """Add another timer's stages (a loop shared by several requests counts for each)."""
        for name, sec in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + sec

    def report(self) -> dict[str, float]:
        """Stage -> milliseconds."""
        return {name: round(sec * 1000.0, 3) for name, sec in self.seconds.items()}
