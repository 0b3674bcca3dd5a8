"""optimum-onnx's ORTStableDiffusionInpaintPipeline, timed by lredit's own loop, written as an
lr-bench record. Runs inside the peer venv that bench/peer_optimum.sh makes (optimum-onnx pins
transformers < 4.58, which conflicts with ours); lredit's torch-free base install is there too.

The peer inpaints only (no DINO, RGN or ranking): set its 'inpaint' column beside the engine's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lredit.atomic import write_bytes_atomic
from lredit.bench import record
from lredit.bench.backends import bench_image
from lredit.bench.timing import measure, summarize


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline-dir", type=Path, required=True, help="from python -m lredit.bench.peer_models")
    p.add_argument("--onnx-dir", type=Path, required=True, help="where optimum's export is kept")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--anchors", type=int, default=9)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--working-size", type=int, default=512)
    p.add_argument("--models", default="tiny")
    p.add_argument("--prompt", default="a bowl of strawberries")
    args = p.parse_args(argv)

    import torch
    from optimum.onnxruntime import ORTStableDiffusionInpaintPipeline

    start = time.perf_counter()
    if (args.onnx_dir / "model_index.json").exists():
        pipe = ORTStableDiffusionInpaintPipeline.from_pretrained(str(args.onnx_dir))
    else:
        pipe = ORTStableDiffusionInpaintPipeline.from_pretrained(str(args.pipeline_dir), export=True)
        pipe.save_pretrained(args.onnx_dir)
    load_s = time.perf_counter() - start
    pipe.set_progress_bar_config(disable=True)

    size, k = args.working_size, args.anchors
    image = Image.fromarray(bench_image()).resize((size, size))
    masks = []
    for i in range(k):  # K distinct boxes: the cost of inpainting does not depend on where they are
        m = np.zeros((size, size), np.uint8)
        a = (i * size // (2 * k)) % (size // 2)
        m[a:a + size // 3, a:a + size // 3] = 255
        masks.append(Image.fromarray(m))

    def run_once() -> dict:
        t = time.perf_counter()
        pipe(prompt=[f"a high quality image of {args.prompt}."] * k, image=[image] * k, mask_image=masks,
             height=size, width=size, num_inference_steps=args.steps, guidance_scale=7.5,
             generator=torch.Generator().manual_seed(0), output_type="np")
        ms = (time.perf_counter() - t) * 1000.0
        return {"inpaint": ms, "denoise_per_step": ms / args.steps}

    m = measure(run_once, runs=args.runs, warmup=args.warmup)
    import optimum.version

    versions = {"python": sys.version.split()[0], "optimum": optimum.version.__version__}
    for dist in ("optimum-onnx", "onnxruntime", "diffusers", "transformers", "torch"):
        from importlib import metadata

        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    device = record.device_info("cpu")
    rec = {
        "backend": "optimum-ort (peer)", "device": device, "versions": versions, "models": args.models,
        "precision": "fp32", "anchors": k, "steps": args.steps, "resolution": size, "scheduler": "model",
        "runs": args.runs, "warmup": args.warmup, "clock": "perf_counter", "status": "ok", "scope": "inpaint",
        "end_to_end_ms": summarize(m.runs_ms), "stages_ms": m.stage_summary(), "warmup_ms": m.warmup_ms,
        "edits_per_minute": round(60000.0 / summarize(m.runs_ms)["p50"], 3),
        "peak_rss_mb": round(m.peak_rss_bytes / 2**20, 1), "peak_device_mb": None, "speedup_vs_authors": None,
        "note": f"optimum-ort (peer): inpainting only; its speed-up is over the authors' inpaint stage "
                f"(export + load {load_s:.1f} s, not timed)",
    }
    doc = {"schema_version": record.SCHEMA_VERSION, "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "command": "bench/peer_optimum.sh " + " ".join(sys.argv[1:]), "host": device, "records": [rec]}
    record.validate(doc)
    write_bytes_atomic(args.out, (json.dumps(doc, indent=2) + "\n").encode())
    print(f"peer_optimum: inpaint p50 {rec['end_to_end_ms']['p50']:.1f} ms; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
