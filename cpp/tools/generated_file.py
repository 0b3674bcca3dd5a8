"""The command line the generators in this folder share: write the generated file atomically, or
with --check compare it with the committed one and fail when it is out of date."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(out: Path, render: Callable[[], str], description: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date: run python {Path(sys.argv[0]).as_posix()}", file=sys.stderr)
            return 1
        return 0
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} ({text.count(chr(10))} lines)")
    return 0
