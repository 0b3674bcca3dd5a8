"""Load on lr-serve: closed-loop HTTP clients at several concurrencies, batching on and off.

    python -m lredit.bench.serve_load --bundle B --concurrency 1,4,8 --anchors 1 --steps 10 \
        --json serve.json --markdown serve.md --plot serve.png

For each mode (batched, unbatched) it starts lr-serve on loopback (a private Ray instance), warms
it up, then for each concurrency c runs c clients that each send `--requests` edits one after
another. It records edits/min over the wall time and the p50/p99 latency seen by the clients.
It talks HTTP only: the service under test is the one users run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lredit.atomic import write_bytes_atomic, write_json_atomic
from lredit.manifest import read_manifest

from .record import device_info

log = logging.getLogger(__name__)
MODES = ("batched", "unbatched")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "table.png"


@dataclass(frozen=True)
class LoadConfig:
    bundle: Path
    concurrency: tuple[int, ...] = (1, 4, 8)
    requests: int = 6
    """Edits per client at each concurrency (closed loop: the next one leaves when the last returned)."""
    anchors: int = 1
    steps: int = 10
    regions: str = "rgn"
    """One pass (the RGN's sizes), whose requests share one denoising loop; search batches per request."""
    max_wait_ms: float = 50.0
    max_batch_candidates: int = 16
    num_cpus: int = 2
    image: Path = EXAMPLE
    prompt: str = "a bowl of strawberries"


class Service:
    """lr-serve as a subprocess on a free loopback port; stopped with SIGTERM (it drains)."""

    def __init__(self, cfg: LoadConfig, batched: bool, startup_s: float = 300):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix="lrb", dir="/tmp"))
        cmd = [sys.executable, "-m", "lredit.serve.cli", "--bundle", str(cfg.bundle), "--port", str(self.port),
               "--num-cpus", str(cfg.num_cpus), "--replica-cpus", str(cfg.num_cpus), "--ray-temp-dir", str(self.temp / "ray"),
               "--max-wait-ms", str(cfg.max_wait_ms), "--max-batch-candidates", str(cfg.max_batch_candidates),
               "--max-queue", "1024", *([] if batched else ["--no-batching"])]
        self.log_path = self.temp / "lr-serve.log"
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"), env=env)
        deadline = time.monotonic() + startup_s
        while "ready at" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"lr-serve did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        shutil.rmtree(self.temp, ignore_errors=True)


def _client(url: str, cfg: LoadConfig, image: bytes, seed: int, count: int) -> list[tuple[int, float, int]]:
    """`count` edits one after another: (status, seconds, requests in its batch)."""
    import requests

    out = []
    for i in range(count):
        start = time.perf_counter()
        response = requests.post(
            f"{url}/v1/edit",
            files={"image": ("image.png", image, "image/png")},
            data={"prompt": cfg.prompt, "seed": str(seed * 1000 + i), "anchors": str(cfg.anchors), "steps": str(cfg.steps),
                  "regions": cfg.regions},
            timeout=600,
        )
        seconds = time.perf_counter() - start
        batch = response.json()["report"]["batch"]["requests"] if response.status_code == 200 else 0
        out.append((response.status_code, seconds, batch))
    return out


def measure(url: str, cfg: LoadConfig, concurrency: int, image: bytes) -> dict:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        per_client = list(pool.map(lambda c: _client(url, cfg, image, c, cfg.requests), range(concurrency)))
    wall = time.perf_counter() - start
    rows = [row for client in per_client for row in client]
    ok = [row for row in rows if row[0] == 200]
    latencies = np.array([row[1] for row in ok]) * 1000.0
    return {
        "concurrency": concurrency,
        "requests": len(rows),
        "errors": len(rows) - len(ok),
        "wall_s": round(wall, 3),
        "edits_per_min": round(len(ok) / wall * 60.0, 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if ok else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if ok else None,
        "mean_batch_requests": round(float(np.mean([row[2] for row in ok])), 2) if ok else None,
    }


def run(cfg: LoadConfig) -> dict:
    image = cfg.image.read_bytes()
    manifest = read_manifest(cfg.bundle)
    runs = []
    for mode in MODES:
        service = Service(cfg, batched=mode == "batched")
        try:
            measure(service.url, LoadConfig(**{**cfg.__dict__, "requests": 1}), max(cfg.concurrency), image)  # warm-up
            for c in cfg.concurrency:
                row = {"mode": mode, **measure(service.url, cfg, c, image)}
                log.info("%s", row)
                runs.append(row)
        finally:
            service.stop()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": device_info("cpu"),
        "shared_machine": True,
        "bundle": {"models": manifest.models.source, "precision": manifest.precision.value,
                   "working_size": manifest.pipeline.working_size},
        "anchors": cfg.anchors,
        "steps": cfg.steps,
        "requests_per_client": cfg.requests,
        "max_wait_ms": cfg.max_wait_ms,
        "max_batch_candidates": cfg.max_batch_candidates,
        "runs": runs,
    }


def markdown(doc: dict) -> str:
    by = {(r["mode"], r["concurrency"]): r for r in doc["runs"]}
    host = doc["host"]
    lines = [
        f"lr-serve load, {doc['date'][:10]}: {host['name']} ({host['cores']} cores, shared with other jobs), "
        f"{doc['bundle']['models']} {doc['bundle']['precision']} bundle at {doc['bundle']['working_size']} px, "
        f"K={doc['anchors']}, {doc['steps']} steps, {doc['requests_per_client']} edits per client, "
        f"batch wait {doc['max_wait_ms']:g} ms.",
        "",
        "| concurrency | mode | edits/min | p50 (ms) | p99 (ms) | p99/p50 | mean requests per batch | errors "
        "| batched / unbatched edits/min |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in sorted({r["concurrency"] for r in doc["runs"]}):
        for mode in MODES:
            r = by.get((mode, c))
            if r is None:
                continue
            other = by.get(("unbatched", c))
            ratio = f"{r['edits_per_min'] / other['edits_per_min']:.2f}x" if mode == "batched" and other else ""
            spread = f"{r['p99_ms'] / r['p50_ms']:.2f}" if r["p50_ms"] else "-"
            lines.append(f"| {c} | {mode} | {r['edits_per_min']:.1f} | {r['p50_ms']} | {r['p99_ms']} | {spread} | "
                         f"{r['mean_batch_requests']} | {r['errors']} | {ratio} |")
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    """Edits/min per concurrency, batched beside unbatched (Pillow only)."""
    from io import BytesIO

    from PIL import Image, ImageDraw

    by = {(r["mode"], r["concurrency"]): r for r in doc["runs"]}
    levels = sorted({r["concurrency"] for r in doc["runs"]})
    top = max(r["edits_per_min"] for r in doc["runs"]) or 1.0
    width, height, base, bar = 140 + 160 * len(levels), 340, 290, 50
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), f"lr-serve edits/min - {doc['host']['name']} (shared) - K={doc['anchors']}, {doc['steps']} steps, "
                        f"{doc['bundle']['working_size']} px", fill="black")
    colours = {"batched": (46, 120, 200), "unbatched": (200, 120, 46)}
    for i, c in enumerate(levels):
        x0 = 80 + 160 * i
        for j, mode in enumerate(MODES):
            r = by.get((mode, c))
            if r is None:
                continue
            h = 230 * r["edits_per_min"] / top
            x = x0 + j * (bar + 6)
            draw.rectangle([x, base - h, x + bar, base], fill=colours[mode])
            draw.text((x + 4, base - h - 14), f"{r['edits_per_min']:.0f}", fill="black")
        draw.text((x0 + 30, base + 8), f"concurrency {c}", fill="black")
    for j, mode in enumerate(MODES):
        draw.rectangle([10, 40 + 18 * j, 22, 52 + 18 * j], fill=colours[mode])
        draw.text((28, 40 + 18 * j), mode, fill="black")
    buffer = BytesIO()
    img.save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lredit.bench.serve_load", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--concurrency", default="1,4,8", type=lambda s: tuple(int(v) for v in s.split(",")))
    p.add_argument("--requests", type=int, default=6, help="edits per client at each concurrency")
    p.add_argument("--anchors", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--regions", default="rgn", help="region mode of every request (rgn: requests share one loop)")
    p.add_argument("--max-wait-ms", type=float, default=50.0)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--plot", type=Path)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    cfg = LoadConfig(bundle=a.bundle, concurrency=a.concurrency, requests=a.requests, anchors=a.anchors, steps=a.steps,
                     regions=a.regions, max_wait_ms=a.max_wait_ms, num_cpus=a.num_cpus)
    doc = run(cfg)
    table = markdown(doc)
    sys.stdout.write(table)
    if a.json:
        write_json_atomic(a.json, doc)
    if a.markdown:
        write_bytes_atomic(a.markdown, table.encode())
    if a.plot:
        plot(doc, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
