"""lr-export (not yet available)."""

import sys


def main(argv=None) -> int:
    print("lr-export: not yet available", file=sys.stderr)
    return 2
