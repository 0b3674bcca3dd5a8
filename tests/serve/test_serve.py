"""lr-serve end to end: one service (a private Ray instance on loopback, CPU, ORT, the tiny bundle)
started as a subprocess for the module; concurrent edits equal to Editor.edit, bad requests,
a full queue, a killed editor replica, and SIGTERM with requests in flight, in that order.
Every wait is bounded."""

import base64
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray.serve", reason="lr-serve needs the 'serve' extra: pip install -e '.[serve]'")
requests = pytest.importorskip("requests", reason="the lr-serve tests talk HTTP with requests (extra 'serve')")

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "table.png"
TIMEOUT_S = 60  # the service's request_timeout_s
LIMITS = dict(max_upload_bytes=300_000, max_pixels=1_000_000, max_anchors=4, max_steps=8, max_queue=6)
STARTUP_S = 240
MAX_LEVELS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    """A server could listen on it again (SO_REUSEADDR, as servers bind: closed connections in
    TIME_WAIT do not count, a listening socket does)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


class Service:
    def __init__(self, bundle: Path):
        self.port, self.metrics_port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix="lrs", dir="/tmp"))  # Ray's socket paths must stay short
        self.log = self.temp / "lr-serve.log"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in LIMITS.items()]
        cmd = [sys.executable, "-m", "lredit.serve.cli", "--bundle", str(bundle), "--port", str(self.port),
               "--metrics-port", str(self.metrics_port), "--num-cpus", "2", "--ray-temp-dir", str(self.temp / "ray"),
               "--max-batch-candidates", "8", "--max-wait-ms", "300", f"--request-timeout-s={TIMEOUT_S}",
               "--drain-timeout-s", "120", *flags]
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), env=self.env)

    def wait_ready(self) -> str:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            text = self.log.read_text()
            found = re.search(r"ready at .* \(Ray cluster (\S+?)[,)]", text)
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                pytest.fail(f"lr-serve exited with {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.5)
        pytest.fail(f"lr-serve not ready within {STARTUP_S} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def service(tiny_bundle):
    svc = Service(tiny_bundle)
    try:
        svc.address = svc.wait_ready()
        yield svc
    finally:
        svc.stop()


def _edit(url, *, fields=None, image=None, filename="table.png", accept=None, timeout=TIMEOUT_S + 30):
    data = {"prompt": "a bowl of strawberries", "anchors": "2", "steps": "3", "regions": "rgn", **(fields or {})}
    files = {"image": (filename, EXAMPLE.read_bytes() if image is None else image, "image/png")}
    headers = {"Accept": accept} if accept else {}
    return requests.post(f"{url}/v1/edit", data={k: v for k, v in data.items() if v is not None}, files=files,
                         headers=headers, timeout=timeout)


def _image(response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(response.json()["image"]))))


def test_health(service):
    response = requests.get(f"{service.url}/v1/health", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_concurrent_edits_are_batched_and_equal_editor_edit(service, tiny_bundle):
    from lredit.engine.frontends.editor import Editor

    jobs = [{"seed": str(i), "anchors": str(1 + i % 2)} for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda f: _edit(service.url, fields=f), jobs))
    assert [r.status_code for r in responses] == [200] * 16, [r.text[:200] for r in responses]
    editor = Editor.from_bundle(tiny_bundle, backend="ort")
    for fields, response in zip(jobs, responses):
        body = response.json()
        expected = editor.edit(EXAMPLE, "a bowl of strawberries", seed=int(fields["seed"]), anchors=int(fields["anchors"]), steps=3,
                               regions="rgn")
        assert body["chosen"] == expected.chosen == body["report"]["chosen"]
        assert body["report"]["config"]["seed"] == int(fields["seed"])
        assert len(body["report"]["candidates"]) == int(fields["anchors"])
        assert np.abs(_image(response).astype(int) - np.asarray(expected.image).astype(int)).max() <= MAX_LEVELS
    assert max(r.json()["report"]["batch"]["requests"] for r in responses) > 1
    # The same seen through Ray's metrics endpoint (exported every few seconds).
    deadline, batches = time.monotonic() + 45, (0.0, 0.0)
    while time.monotonic() < deadline:
        text = requests.get(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=10).text
        batches = (_metric(text, "ray_lredit_batch_requests_count"), _metric(text, 'ray_lredit_batch_requests_bucket', 'le="1.0"'))
        if batches[0] > batches[1] and _metric(text, "ray_lredit_requests_total", 'status="200"') >= 16:
            break
        time.sleep(2)
    assert batches[0] > batches[1], f"no batch of more than one request in the metrics: {batches}"


def _metric(text: str, name: str, label: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _png_bytes(width, height) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_requests_get_4xx_json_and_service_stays_healthy(service):
    good = EXAMPLE.read_bytes()
    cases = [
        (dict(image=b"this is text"), 400, "image", None),
        (dict(image=good[:200]), 400, "image", None),
        (dict(fields={"prompt": " "}), 400, "prompt", None),
        (dict(image=os.urandom(LIMITS["max_upload_bytes"] + 1000)), 413, None, "max_upload_bytes"),
        (dict(image=_png_bytes(1100, 1000)), 413, "image", "max_pixels"),
        (dict(fields={"anchors": "0"}), 400, "anchors", None),
        (dict(fields={"anchors": "5"}), 400, "anchors", "max_anchors"),
        (dict(fields={"steps": "99"}), 400, "steps", "max_steps"),
        (dict(fields={"regions": "everywhere"}), 400, "regions", None),
        (dict(fields={"seed": "twelve"}), 400, "seed", None),
    ]
    for kwargs, status, field, limit in cases:
        response = _edit(service.url, **kwargs)
        assert response.status_code == status, (kwargs.get("fields"), response.text[:300])
        body = response.json()
        assert (body["field"], body["limit"]) == (field, limit) and body["error"]
    no_image = requests.post(f"{service.url}/v1/edit", files={"prompt": (None, "a cat")}, timeout=30)
    assert no_image.status_code == 400 and no_image.json()["field"] == "image"
    assert requests.get(f"{service.url}/v1/health", timeout=10).status_code == 200
    png = _edit(service.url, accept="image/png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (64, 64)


def test_full_queue_answers_503_with_retry_after(service):
    count = 14
    with ThreadPoolExecutor(count) as pool:
        responses = list(pool.map(lambda i: _edit(service.url, fields={"seed": str(i), "anchors": "4", "steps": "8"}), range(count)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["limit"] == "max_queue"


def _wait_queue_depth(service, depth: int, timeout_s: float = 20) -> None:
    """Until the ingress holds `depth` requests for the editor (or timeout_s passed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if requests.get(f"{service.url}/v1/health", timeout=10).json()["queue_depth"] >= depth:
            return
        time.sleep(0.05)


def test_killed_editor_replica_fails_or_finishes_each_request_in_time(service):
    import ray

    results, started = [], time.monotonic()

    def one(i):
        try:
            response = _edit(service.url, fields={"seed": str(100 + i), "anchors": "4", "steps": "8"})
            results.append((response.status_code, response.json()))
        except requests.RequestException as exc:  # a hang would surface as a client timeout here
            results.append((None, repr(exc)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    ray.init(address=service.address, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        _wait_queue_depth(service, 2)
        (killed,) = _editor_replicas()
        ray.kill(ray.get_actor(killed, namespace="serve"), no_restart=True)
        for t in threads:
            t.join(timeout=TIMEOUT_S + 40)
        assert not any(t.is_alive() for t in threads), "a request hung"
        assert len(results) == 6 and time.monotonic() - started < TIMEOUT_S + 40
        for status, body in results:
            assert status == 200 or (status is not None and status >= 500 and body["error"]), (status, body)
        # Serve replaces the replica: edits succeed again, on a new one.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if _edit(service.url).status_code == 200:
                break
            time.sleep(2)
        else:
            pytest.fail("no successful edit within 180 s after the editor replica was killed")
        assert killed not in _editor_replicas()
    finally:
        ray.shutdown()


def _editor_replicas() -> list[str]:
    import ray

    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "#Editor#" in a["name"]]


def test_sigterm_drains_in_flight_requests_then_exits_0(service):
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(_edit(service.url, fields={"seed": str(i), "steps": "8"})))
               for i in range(3)]
    for t in threads:
        t.start()
    _wait_queue_depth(service, 1)
    service.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=TIMEOUT_S + 30)
    assert [r.status_code for r in results] == [200, 200, 200], [r.text[:200] for r in results]
    assert service.proc.wait(timeout=120) == 0
    assert "drained (0 request(s) unanswered)" in service.log.read_text()
    assert _port_free(service.port)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{service.url}/v1/health", timeout=5)
