"""Write tests/data/noise_golden.txt: lredit.engine.ops.noise.initial_noise for a few keys, as float32 bit
patterns, for test_philox.cpp and tests/test_noise.py. Run from the repository root:

    python cpp/tools/gen_noise_golden.py   (--check: compare, write nothing)
"""

from __future__ import annotations

from pathlib import Path

from generated_file import write_or_check

from lredit.engine.ops.noise import initial_noise

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "noise_golden.txt"

# (seed, anchor, size, count): counts not a multiple of 4, the largest key and counter words.
CASES = [
    (0, 0, 0, 9),
    (1, 2, 3, 16),
    (42, 8, 5, 4),
    (0x123456789ABCDEF0, 5, 4, 33),
    (2**64 - 1, 2**32 - 1, 2**32 - 1, 7),
    (2**32, 0, 1, 12),
]


def render() -> str:
    lines = ["# seed anchor size, then initial_noise(seed, anchor, size, (count,)) as float32 bit patterns (hex)"]
    for seed, anchor, size, count in CASES:
        bits = initial_noise(seed, anchor, size, (count,)).view("<u4")
        lines.append(" ".join([str(seed), str(anchor), str(size), *(f"{b:08x}" for b in bits)]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(OUT, render, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()
