"""lr-export: models -> bundle (ONNX graphs, manifest.json, parity.json[, TensorRT engines])."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lredit.cli import run_cli
from lredit.config import Precision
from lredit.graphs import OPTIONAL_GRAPHS


def build_parser() -> argparse.ArgumentParser:
    from .specs import SPECS

    p = argparse.ArgumentParser(prog="lr-export", description="Export lredit's graphs to an ONNX/TensorRT bundle.")
    p.add_argument("--models", default="tiny",
                   help="a preset ('tiny', 'full-random', 'tiny-blend', 'full-random-blend', 'shapes') or a models folder (see lr-edit)")
    p.add_argument("--out", type=Path, required=True, help="bundle folder")
    p.add_argument("--precision", choices=[p.value for p in Precision], default=Precision.FP32.value)
    p.add_argument("--graphs", nargs="+", choices=sorted(SPECS),
                   help=f"graphs to export (default: those an edit runs; {', '.join(OPTIONAL_GRAPHS)} only on request)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (legacy exporter; 17 or 18)")
    p.add_argument("--working-size", type=int, help="inpainting resolution the graphs are built for (default: EditConfig's)")
    p.add_argument("--trt", action="store_true", help="also build TensorRT engines (extra 'trt', needs a GPU)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    return run_cli("lr-export", lambda: _export(args), interrupted="the bundle is marked incomplete; re-run to finish it")


def export_settings(models: str, working_size: int | None):
    """The geometry the graphs are built for: --working-size, else what the models folder's
    geometry.json carries (the shapes world: 128 px, its half-sizes), else EditConfig's."""
    from .models import ModelSources
    from .specs import GRAPH_GEOMETRY, ExportSettings

    carried = {k: (tuple(v) if isinstance(v, list) else v) for k, v in ModelSources.parse(models).geometry().items()
               if k in GRAPH_GEOMETRY}
    return ExportSettings(**{**carried, **({"working_size": working_size} if working_size is not None else {})})


def _export(args) -> int:
    """lr-export's work, argparse namespace in; LreditErrors go to run_cli."""
    from .exporter import ExportConfig, check_export_config, run_export

    settings = export_settings(args.models, args.working_size)
    cfg = ExportConfig(
        out=args.out,
        models=args.models,
        precision=Precision(args.precision),
        opset=args.opset,
        settings=settings,
        trt=args.trt,
        **({"graphs": tuple(args.graphs)} if args.graphs else {}),
    )
    check_export_config(cfg)  # fail before any model loads
    if cfg.trt:
        from .trt_build import require_tensorrt

        require_tensorrt()  # fail before any export work
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(cfg.graphs), desc="export", unit="graph", file=sys.stderr)

    def on_graph(name: str, status: str) -> None:
        if bar is not None:
            bar.update(1)
            bar.write(f"lr-export: {name}: {status}")
        else:
            print(f"lr-export: {name}: {status}", file=sys.stderr)

    manifest = run_export(cfg, on_graph)
    if bar is not None:
        bar.close()
    if cfg.trt:
        from .trt_build import build_engines

        build_engines(cfg.out, manifest, on_graph)
    print(f"lr-export: wrote {args.out}/manifest.json ({len(cfg.graphs)} graphs, {args.precision})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
