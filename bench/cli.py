"""lr-bench: per-stage latency of the engine's backends beside the authors' way of working.

    lr-bench --models tiny --backends authors,engine-torch,engine-ort --anchors 9 --steps 25 \\
        --runs 5 --warmup 1 --json bench.json --markdown bench.md --plot bench.png
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

from lredit.atomic import write_bytes_atomic
from lredit.cli import run_cli
from lredit.config import SCHEDULERS, Backend, Precision

from .config import AUTHORS, BACKEND_NAMES, BenchConfig, engine_backend_name

# Short names for the engine's backends, as lr-edit --backend spells them.
ALIASES = {b.value: engine_backend_name(b) for b in Backend}


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers, e.g. 1,4,9,16") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr-bench", description=__doc__.splitlines()[0])
    src = p.add_argument_group("models")
    src.add_argument("--models", help="tiny | full-random | a local models folder (default: tiny, or the bundle's)")
    src.add_argument("--bundle", type=Path, help="an lr-export bundle for engine-ort / engine-trt "
                                                 "(default: export --models into --workdir)")
    src.add_argument("--workdir", type=Path, help="where bundles exported for benchmarks are kept")
    what = p.add_argument_group("what to measure")
    what.add_argument("--backends", default="authors,engine-torch,engine-ort",
                      help=f"comma list of {','.join(BACKEND_NAMES)} (or torch, ort, trt)")
    what.add_argument("--anchors", type=_ints, default=BenchConfig.anchors, help="K values to sweep, e.g. 1,4,9,16")
    what.add_argument("--steps", type=_ints, default=(25,), help="step counts to sweep, e.g. 10,25,50")
    what.add_argument("--runs", type=int, default=5, help="timed runs per point (default 5)")
    what.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs (default 1)")
    what.add_argument("--working-size", type=int, default=BenchConfig.working_size)
    what.add_argument("--scheduler", default=BenchConfig.scheduler, choices=SCHEDULERS)
    what.add_argument("--precision", choices=[p.value for p in Precision], default=Precision.FP32.value,
                      help="torch backends on CUDA (the authors ran fp16); bundles fix their own")
    what.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    what.add_argument("--authors-iterations", type=int, default=0,
                      help="extra inpaint + rank passes per authors edit (their README loop: 10)")
    what.add_argument("--regions", default="rgn",
                      help="engine region modes side by side: comma list of rgn,search,search-noprune,search-crop,learn (default rgn)")
    what.add_argument("--prune-fractions", type=lambda t: tuple(float(v) for v in t.split(",")),
                      help="pruned search variants: schedule fractions, e.g. 0.1 (default: the edit's 0.2,0.3,0.6)")
    what.add_argument("--prune-keep", type=float, help="pruned search variants: share of sizes kept per phase (default 0.5)")
    what.add_argument("--image", type=Path, help="input image (default: a synthetic 320x320 image)")
    what.add_argument("--prompt", default="a bowl of strawberries")
    what.add_argument("--in-process", action="store_true",
                      help="measure all backends in this process (faster start; memory figures then include "
                           "the backends measured before; default: one process per backend)")
    what.add_argument("--peer", type=Path, action="append", default=[],
                      help="a peer's JSON record (bench/peer_optimum.sh) to set beside ours; repeatable")
    out = p.add_argument_group("outputs")
    out.add_argument("--report", type=Path, help="measure nothing: re-render a saved JSON record "
                                                 "(with --markdown / --plot) and print its table")
    out.add_argument("--json", type=Path, help="write the JSON record here")
    out.add_argument("--markdown", type=Path, help="write a markdown table here")
    out.add_argument("--plot", type=Path, help="write a PNG chart of the stages here")
    out.add_argument("--overwrite", action="store_true", help="replace existing --json/--markdown/--plot files")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("-v", "--verbose", action="store_true")
    return p


def parse(argv=None) -> BenchConfig:
    args = build_parser().parse_args(argv)
    fields = dict(
        models=args.models if (args.models or args.bundle) else "tiny",
        bundle=args.bundle,
        backends=tuple(ALIASES.get(b.strip(), b.strip()) for b in args.backends.split(",") if b.strip()),
        anchors=args.anchors, steps=args.steps, runs=args.runs, warmup=args.warmup,
        working_size=args.working_size, scheduler=args.scheduler, precision=args.precision, device=args.device,
        authors_iterations=args.authors_iterations, image=args.image,
        regions=tuple(v.strip() for v in args.regions.split(",") if v.strip()), prompt=args.prompt, peers=tuple(args.peer),
        prune_fractions=args.prune_fractions, prune_keep=args.prune_keep,
        json_out=args.json, markdown_out=args.markdown, plot_out=args.plot, progress=not args.no_progress,
        overwrite=args.overwrite, isolate=not args.in_process,
    )
    if args.workdir:
        fields["workdir"] = args.workdir
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    return BenchConfig(**fields)


def main(argv=None) -> int:
    command = "lr-bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(argv)
    if args.report:
        return _rerender(args)
    return run_cli("lr-bench", lambda: _bench(argv, command))


def _bench(argv, command: str) -> int:
    """Measure, then write the record and its renderings; LreditErrors go to run_cli."""
    from .report import console, markdown, plot
    from .run import run_bench

    cfg = parse(argv).validated()
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        engines = sum(1 if b == AUTHORS else len(cfg.regions) for b in cfg.backends)
        points = engines * len(cfg.anchors) * len(cfg.steps) * (cfg.runs + cfg.warmup)
        bar = tqdm(total=points, desc="lr-bench", unit="edit", file=sys.stderr)
    try:
        doc = run_bench(cfg, command, on_run=(lambda what: (bar.set_postfix_str(what), bar.update(1))) if bar else None)
    finally:
        if bar:
            bar.close()
    if cfg.json_out:
        write_bytes_atomic(cfg.json_out, (json.dumps(doc, indent=2) + "\n").encode())
    if cfg.markdown_out:
        write_bytes_atomic(cfg.markdown_out, markdown(doc).encode())
    if cfg.plot_out:
        plot(doc, cfg.plot_out)
    print(console(doc))
    failed = [r for r in doc["records"] if r["status"] == "failed"]
    return 1 if failed else 0


def _rerender(args) -> int:
    """Tables and charts are formatters over the record: make them again from a saved one."""
    from .record import add_speedups, validate
    from .report import console, markdown, plot

    for flag, path in (("--markdown", args.markdown), ("--plot", args.plot)):
        if path is not None and path.exists() and not args.overwrite:
            print(f"lr-bench: error: {flag} {path} exists; pass --overwrite to replace it", file=sys.stderr)
            return 2
    try:
        doc = json.loads(args.report.read_text())
        add_speedups(doc["records"])  # derived values follow the current rule
        validate(doc)
    except (OSError, ValueError, KeyError) as exc:
        print(f"lr-bench: error: --report {args.report}: {exc}", file=sys.stderr)
        return 2
    if args.markdown:
        write_bytes_atomic(args.markdown, markdown(doc).encode())
    if args.plot:
        plot(doc, args.plot)
    print(console(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
