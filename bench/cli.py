"""lr-bench (not yet available)."""

import sys


def main(argv=None) -> int:
    print("lr-bench: not yet available", file=sys.stderr)
    return 2
