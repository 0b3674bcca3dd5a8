"""GPU microbenchmark: the fused ROI-pool kernel (one launch for all K x M boxes) against the
authors' way (1x1 projection conv, then torchvision.ops.roi_align called once per box size,
then stacking), on the same inputs, timed with CUDA events. Prints a markdown table for
bench/RESULTS.md.

    python -m lredit.bench.kernel_microbench --anchors 9 --grid 32 --depth 768 --runs 200

Needs a CUDA GPU with CuPy, torch (CUDA build) and torchvision; says which is missing otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lredit.kernels.loader import CudaRoiPool, cuda_device_available
from lredit.kernels.roi_pool_ref import PoolSpec, roi_pool_anchors


def _events_ms(cp, fn, runs: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(runs):
        fn()
    stop.record()
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop) / runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lredit.bench.kernel_microbench", description=__doc__.splitlines()[0])
    p.add_argument("--anchors", type=int, default=9)
    p.add_argument("--half-sizes", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14])
    p.add_argument("--grid", type=int, default=32, help="DINO patch grid side (32 for ViT-B/8 at 256)")
    p.add_argument("--depth", type=int, default=768)
    p.add_argument("--channels", type=int, default=12)
    p.add_argument("--roi-size", type=int, default=8)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--json", type=Path, help="also write the rows (ms per call, max abs error, speed-up) as JSON here")
    args = p.parse_args(argv)
    ok, why = cuda_device_available()
    if not ok:
        print(f"microbench: needs a CUDA GPU: {why}", file=sys.stderr)
        return 2
    try:
        import cupy as cp
        import torch
        from torchvision.ops import roi_align
    except ImportError as exc:
        print(f"microbench: needs torch (CUDA build) and torchvision: {exc}", file=sys.stderr)
        return 2

    rng = np.random.default_rng(0)
    side, k = args.grid, args.anchors
    tokens = rng.standard_normal((side * side, args.depth)).astype(np.float32)
    weight = (rng.standard_normal((args.channels, args.depth)) / np.sqrt(args.depth)).astype(np.float32)
    bias = rng.standard_normal(args.channels).astype(np.float32)
    anchors = np.stack([rng.integers(0, side, k), rng.integers(0, side, k)], axis=1)
    sizes = tuple(args.half_sizes)
    pool = CudaRoiPool()
    dev_tokens = cp.asarray(tokens)
    rows = []
    for fused in (False, True):
        spec = PoolSpec(out_size=args.roi_size, fused=fused)
        got = cp.asnumpy(pool(dev_tokens, (side, side), anchors, sizes, weight, bias, spec)[0])
        want = roi_pool_anchors(tokens, (side, side), anchors, sizes, weight, bias, spec)[0]
        ms = _events_ms(cp, lambda: pool(dev_tokens, (side, side), anchors, sizes, weight, bias, spec), args.runs)
        rows.append((f"fused kernel ({'projection fused' if fused else 'projection first'})", ms,
                     float(np.abs(got - want).max())))

    # The authors' way: conv 1x1, then roi_align per size, then stack ([M, K, c, l, l]).
    feats = torch.from_numpy(tokens.T.reshape(1, args.depth, side, side).copy()).cuda()
    conv = torch.nn.Conv2d(args.depth, args.channels, 1).cuda()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight)[:, :, None, None])
        conv.bias.copy_(torch.from_numpy(bias))
    boxes = [torch.from_numpy(np.stack([np.clip(anchors[:, 1] - s, 0, side - 1), np.clip(anchors[:, 0] - s, 0, side - 1),
                                        np.clip(anchors[:, 1] + s, 0, side - 1), np.clip(anchors[:, 0] + s, 0, side - 1)],
                                       axis=1).astype(np.float32)).cuda() for s in sizes]

    def authors():
        with torch.no_grad():
            projected = conv(feats)
            return torch.stack([roi_align(projected, [b], args.roi_size, 1.0) for b in boxes])

    rows.append(("authors: conv + roi_align per size", _events_ms(cp, authors, args.runs), float("nan")))
    name = torch.cuda.get_device_name(0)
    print(f"ROI pool, K={k}, M={len(sizes)}, grid {side}x{side}, d={args.depth}, c={args.channels}, "
          f"l={args.roi_size}, {args.runs} runs, CUDA events, {name}\n")
    print("| variant | ms per call | max abs vs reference |\n|---|---|---|")
    for label, ms, err in rows:
        print(f"| {label} | {ms:.4f} | {'-' if np.isnan(err) else f'{err:.2e}'} |")
    if args.json:
        authors_ms = rows[-1][1]
        doc = {"device": name, "anchors": k, "sizes": len(sizes), "grid": side, "depth": args.depth,
               "channels": args.channels, "roi_size": args.roi_size, "runs": args.runs, "clock": "cuda_events",
               "rows": [{"variant": label, "ms": ms, "max_abs_error": None if np.isnan(err) else err,
                         "speedup_vs_authors": authors_ms / ms} for label, ms, err in rows]}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
