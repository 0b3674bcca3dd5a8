"""The service's own counters, exported through Ray's metrics endpoint (Prometheus text at
`ray.init(_metrics_export_port=...)` / every node's metrics agent) as `ray_lredit_*`, next to
Ray Serve's own (`ray_serve_*`, batch sizes included)."""

from __future__ import annotations

from ray.serve import metrics

LATENCY_MS = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000, 300_000]
BATCH_SIZES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64]


class IngressMetrics:
    def __init__(self) -> None:
        self.requests = metrics.Counter(
            "lredit_requests", description="Edit requests answered, by HTTP status.", tag_keys=("status",)
        )
        self.inflight = metrics.Gauge(
            "lredit_queue_depth",
            description="Requests this ingress holds for the editors (waiting for a batch or being edited).",
        )
        self.latency = metrics.Histogram(
            "lredit_edit_latency_ms",
            description="End-to-end time of an edit request at the ingress, by HTTP status.",
            boundaries=LATENCY_MS,
            tag_keys=("status",),
        )

    def answered(self, status: int, milliseconds: float) -> None:
        tags = {"status": str(status)}
        self.requests.inc(1, tags=tags)
        self.latency.observe(milliseconds, tags=tags)


class EditorMetrics:
    def __init__(self) -> None:
        self.batch_requests = metrics.Histogram(
            "lredit_batch_requests", description="Requests per edit_batch call.", boundaries=BATCH_SIZES
        )
        self.batch_candidates = metrics.Histogram(
            "lredit_batch_candidates", description="Candidates (sum of anchors) per edit_batch call.", boundaries=BATCH_SIZES
        )
        self.batch_latency = metrics.Histogram(
            "lredit_batch_latency_ms", description="Wall time of one edit_batch call.", boundaries=LATENCY_MS
        )
        self.waiting = metrics.Gauge(
            "lredit_editor_waiting", description="Requests in this editor replica waiting for the next batch."
        )

    def batch(self, requests: int, candidates: int, milliseconds: float) -> None:
        self.batch_requests.observe(requests)
        self.batch_candidates.observe(candidates)
        self.batch_latency.observe(milliseconds)
