"""What every lredit command line shares: one-line errors and a clean interrupt."""

from __future__ import annotations

import sys
from typing import Callable

from .errors import LreditError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(prog: str, body: Callable[[], int], *, interrupted: str = "nothing was written") -> int:
    """Run a command's body: an LreditError prints `prog: error: ...` on one line and exits 2; Ctrl-C
    prints `prog: interrupted; <interrupted>` and exits 130. Other exceptions are bugs and keep
    their traceback."""
    try:
        return body()
    except LreditError as exc:
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED


def one_line(message: str) -> str:
    """`message` with line breaks and other control characters escaped (a file name holding a
    newline must not split the error across lines)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
