"""lr-serve --bundle B: the edit service on Ray Serve, until SIGTERM/SIGINT; then it drains.

On a signal: the ingress refuses new edits (503), lr-serve waits until every accepted request has
been answered (at most --drain-timeout-s), shuts Serve and its own Ray processes down, and exits 0
with the port released.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lredit.cli import run_cli
from lredit.config import Backend
from lredit.errors import InputError

from .config import BACKENDS, DEVICES, Batching, Limits, ServeConfig

log = logging.getLogger("lredit.serve")
APP_NAME = "lredit"
_L, _B = Limits(), Batching()


@dataclass(frozen=True)
class ClusterOptions:
    """Where the service runs (not part of the application itself)."""

    host: str
    port: int
    address: str | None
    """An existing Ray cluster (`ray start --head`); None starts a private one in this process."""
    num_cpus: int | None
    metrics_port: int | None
    temp_dir: Path | None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr-serve", description="Text-driven image edits as an HTTP service (Ray Serve).")
    p.add_argument("--bundle", type=Path, required=True, help="an lr-export bundle (same path on every node)")
    p.add_argument("--backend", choices=[b.value for b in BACKENDS], default=Backend.ORT.value)
    p.add_argument("--device", choices=DEVICES, default="cpu", help="cuda: one editor replica per GPU")
    p.add_argument("--replicas", type=int, default=1, help="editor replicas (default 1)")
    p.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs reserved per editor replica")
    net = p.add_argument_group("cluster and network")
    net.add_argument("--host", default="127.0.0.1", help="HTTP bind address (0.0.0.0 for all interfaces)")
    net.add_argument("--port", type=int, default=8000)
    net.add_argument("--address", help="join a running Ray cluster (ray start --head) instead of starting one")
    net.add_argument("--num-cpus", type=int, help="CPUs of the private Ray instance (default: all)")
    net.add_argument("--metrics-port", type=int, help="Prometheus metrics of this node (Ray's and lredit's)")
    net.add_argument("--ray-temp-dir", type=Path, help="Ray's session folder (default: Ray's)")
    b = p.add_argument_group("batching")
    b.add_argument("--no-batching", action="store_true", help="one request per edit call (the baseline)")
    b.add_argument("--max-batch-candidates", type=int, default=_B.max_candidates, help="batch size in candidates (sum of anchors)")
    b.add_argument("--max-wait-ms", type=float, default=_B.max_wait_ms, help="how long a batch waits to fill")
    lim = p.add_argument_group("limits (each named in the JSON error that enforces it)")
    lim.add_argument("--max-upload-bytes", type=int, default=_L.max_upload_bytes)
    lim.add_argument("--max-pixels", type=int, default=_L.max_pixels)
    lim.add_argument("--max-side", type=int, default=_L.max_side, help="longest image side (413 past it)")
    lim.add_argument("--max-aspect-ratio", type=float, default=_L.max_aspect_ratio, help="longest over shortest side (413 past it)")
    lim.add_argument("--max-anchors", type=int, default=_L.max_anchors)
    lim.add_argument("--max-steps", type=int, default=_L.max_steps)
    lim.add_argument("--request-timeout-s", type=float, default=_L.request_timeout_s)
    lim.add_argument("--max-queue", type=int, default=_L.max_queue, help="requests held for the editors before 503")
    p.add_argument("--drain-timeout-s", type=float, default=600.0, help="on SIGTERM, the longest wait for in-flight requests")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def parse(argv=None) -> tuple[ServeConfig, ClusterOptions]:
    a = build_parser().parse_args(argv)
    config = ServeConfig(
        bundle=a.bundle,
        backend=Backend.parse(a.backend),
        device=a.device,
        replicas=a.replicas,
        replica_cpus=a.replica_cpus,
        limits=Limits(
            max_upload_bytes=a.max_upload_bytes,
            max_pixels=a.max_pixels,
            max_side=a.max_side,
            max_aspect_ratio=a.max_aspect_ratio,
            max_anchors=a.max_anchors,
            max_steps=a.max_steps,
            request_timeout_s=a.request_timeout_s,
            max_queue=a.max_queue,
        ),
        batching=Batching(enabled=not a.no_batching, max_candidates=a.max_batch_candidates, max_wait_ms=a.max_wait_ms),
        drain_timeout_s=a.drain_timeout_s,
    ).validated()
    if not 0 < a.port < 65536:
        raise InputError(f"--port {a.port} is not a TCP port")
    cluster = ClusterOptions(a.host, a.port, a.address, a.num_cpus, a.metrics_port, a.ray_temp_dir)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(name)s: %(message)s")
    return config, cluster


def check_bundle(config: ServeConfig) -> None:
    """Before Ray starts: the bundle is readable and takes max_anchors candidates."""
    from lredit.manifest import read_manifest

    cap = read_manifest(config.bundle).pipeline.max_candidates
    if config.limits.max_anchors > cap:
        raise InputError(f"--max-anchors {config.limits.max_anchors}: bundle {config.bundle} takes at most {cap} candidates per edit")


def run(config: ServeConfig, cluster: ClusterOptions) -> int:
    import ray
    from ray import serve

    from .app import build_app

    stop = threading.Event()
    init = dict(include_dashboard=False, configure_logging=False, log_to_driver=False)
    if cluster.address:
        ray.init(address=cluster.address, **init)
    else:
        extra = {"_temp_dir": str(cluster.temp_dir)} if cluster.temp_dir else {}
        if cluster.metrics_port:
            extra["_metrics_export_port"] = cluster.metrics_port
        ray.init(num_cpus=cluster.num_cpus, **init, **extra)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": cluster.host, "port": cluster.port})
        serve.run(build_app(config), name=APP_NAME, route_prefix="/", blocking=False)
        print(
            f"lr-serve: ready at http://{cluster.host}:{cluster.port}/v1/edit "
            f"(Ray cluster {ray.get_runtime_context().gcs_address}"
            + (f", metrics at http://{cluster.host}:{cluster.metrics_port}/metrics" if cluster.metrics_port else "")
            + ")",
            file=sys.stderr,
            flush=True,
        )
        # Short waits: the signal may land on one of Ray's threads, and Python runs its handler
        # only when the main thread next executes bytecode.
        while not stop.wait(0.2):
            pass
        left = drain(serve.get_app_handle(APP_NAME), config.drain_timeout_s)
        print(f"lr-serve: drained ({left} request(s) unanswered); stopping", file=sys.stderr, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


def drain(ingress, timeout_s: float) -> int:
    """Tell the ingress to refuse new edits, then wait until its in-flight count is 0."""
    deadline = time.monotonic() + timeout_s
    pending = ingress.drain.remote().result(timeout_s=30)
    while pending > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        pending = ingress.in_flight.remote().result(timeout_s=30)
    return pending


def main(argv=None) -> int:
    def body() -> int:
        config, cluster = parse(argv)
        check_bundle(config)
        return run(config, cluster)

    return run_cli("lr-serve", body, interrupted="stopped before the service was up")


if __name__ == "__main__":
    sys.exit(main())
