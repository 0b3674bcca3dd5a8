"""The Ray Serve application: an HTTP ingress (decode, validate, limits; CPU) in front of editor
replicas (one per GPU with --device cuda) that gather requests with @serve.batch and run them
through `Editor.edit_batch`.

`build_app(ServeConfig)` is what lr-serve runs; `app_builder(args)` is the import path the Serve
config YAML names (`lredit.serve.app:app_builder`).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.

import asyncio
import base64
import io
import logging
import math
import time

import numpy as np
from fastapi import FastAPI, Request, Response
from PIL import Image
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, RequestCancelledError
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from lredit.engine.frontends import outputs

from .config import ServeConfig
from .form import RequestError, Upload, check_complete_body, parse_edit_form
from .metrics import EditorMetrics, IngressMetrics
from .outcome import BatchInfo, EditJob, EditOutcome, outcome_of

log = logging.getLogger(__name__)
api = FastAPI(title="lredit", description="Mask-free text-driven image editing via learnable regions")
UNAVAILABLE = (RayActorError, ActorUnavailableError, DeploymentUnavailableError, RequestCancelledError)
"""The editor replica died or went away mid-request (Serve starts a new one): 503, retry."""


def job_candidates(jobs: list[EditJob]) -> int:
    """@serve.batch's batch size: candidates, not requests."""
    return sum(job.candidates for job in jobs)


# Helpers first: @serve.deployment pickles each class when it is decorated, with the module
# globals it uses as they are at that moment.
async def answer_within(response, timeout_s: float, retry_after: int) -> EditOutcome:
    """The editor's answer to one request, or a RequestError: 504 once `timeout_s` passed (the
    request is cancelled), 503 with Retry-After when the editors refuse it or the replica died."""
    try:
        return await asyncio.wait_for(_result(response), timeout_s)
    except asyncio.TimeoutError:
        response.cancel()
        raise RequestError(504, f"no answer within request_timeout_s={timeout_s:g}", limit="request_timeout_s") from None
    except BackPressureError as exc:
        raise RequestError(503, f"the editors' queue is full ({exc})", retry_after=retry_after) from None
    except UNAVAILABLE as exc:
        message = f"the editor replica went away ({type(exc).__name__}); retry"
        raise RequestError(503, message, retry_after=retry_after) from None


async def _result(response):
    return await response


async def _form(request: Request, body: bytes) -> tuple[dict, dict]:
    async def once():
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=4, max_fields=32).parse()
    except MultiPartException as exc:
        raise RequestError(400, f"malformed multipart body: {exc}") from None
    fields: dict[str, list[str]] = {}
    files: dict[str, list[Upload]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.setdefault(key, []).append(Upload(value.filename or "upload", await value.read()))
        else:
            fields.setdefault(key, []).append(value)
    return fields, files


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _json(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(outputs.report_json(payload), status_code=status, media_type="application/json", headers=headers)


def _error(exc: RequestError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
    if exc.close:
        headers["Connection"] = "close"
    return _json(exc.body(), exc.status, headers or None)


@serve.deployment(name="Editor")
class EditorDeployment:
    """Holds one Editor (the bundle's sessions); edits come in one by one and leave in batches."""

    def __init__(self, config: ServeConfig):
        from lredit.engine.frontends.editor import Editor

        self.config = config
        self.editor = Editor.from_bundle(config.bundle, config.backend, providers=config.providers)
        self.backend = config.backend.value
        self.models = outputs.bundle_model_info(config.bundle, self.editor.pipeline.assets)
        self.metrics = EditorMetrics()
        self._waiting: set[int] = set()
        self._one_at_a_time = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self.run_batch.set_max_batch_size(config.batching.max_candidates)
        self.run_batch.set_batch_wait_timeout_s(config.batching.max_wait_ms / 1000.0)
        log.info("editor replica ready: %s on %s/%s", config.bundle, config.backend, config.device)

    async def edit(self, job: EditJob) -> EditOutcome:
        self._waiting.add(id(job))
        self.metrics.waiting.set(len(self._waiting))
        try:
            if self.config.batching.enabled:
                # While a batch runs, arrivals wait here and then enter @serve.batch together:
                # Ray closes a batch after max_wait_ms even when it cannot start yet, which under
                # load would queue many small batches behind the running one.
                await self._idle.wait()
                return await self.run_batch(job)
            async with self._one_at_a_time:
                return (await self._run_now([job]))[0]
        finally:
            self._waiting.discard(id(job))
            self.metrics.waiting.set(len(self._waiting))

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02, batch_size_fn=job_candidates)
    async def run_batch(self, jobs: list[EditJob]) -> list[EditOutcome]:
        self._idle.clear()
        try:
            return await self._run_now(jobs)
        finally:
            self._idle.set()

    async def _run_now(self, jobs: list[EditJob]) -> list[EditOutcome]:
        for job in jobs:
            self._waiting.discard(id(job))
        self.metrics.waiting.set(len(self._waiting))
        # In a thread: the replica's event loop keeps taking requests (and health checks).
        return await asyncio.to_thread(self._run, jobs)

    def _run(self, jobs: list[EditJob]) -> list[EditOutcome]:
        start = time.perf_counter()
        results = self.editor.edit_batch([job.request for job in jobs])
        info = BatchInfo(requests=len(jobs), candidates=job_candidates(jobs))
        self.metrics.batch(info.requests, info.candidates, (time.perf_counter() - start) * 1000.0)
        return [
            outcome_of(result, filename=job.filename, backend=self.backend, models=self.models, batch=info)
            for job, result in zip(jobs, results)
        ]


@serve.deployment(name="Ingress")
@serve.ingress(api)
class Ingress:
    """Parses and checks each request, holds at most `max_queue` for the editors, answers each
    accepted request exactly once (result, 4xx/5xx JSON, or 504 at `request_timeout_s`)."""

    def __init__(self, editor: DeploymentHandle, config: ServeConfig):
        self.editor = editor
        self.config = config
        self.limits = config.limits
        self.metrics = IngressMetrics()
        self.pending = 0
        self.draining = False
        self._latency_s: float | None = None

    @api.get("/v1/health")
    async def health(self) -> Response:
        state = {"status": "draining" if self.draining else "ok", "queue_depth": self.pending, "max_queue": self.limits.max_queue}
        return _json(state, 503 if self.draining else 200)

    @api.post("/v1/edit")
    async def edit(self, request: Request) -> Response:
        start = time.perf_counter()
        try:
            response = await self._edit(request)
        except RequestError as exc:
            response = _error(exc)
        except Exception as exc:  # answered, and logged with its traceback
            log.exception("edit request failed")
            response = _error(RequestError(500, f"internal error: {type(exc).__name__}: {exc}"))
        self.metrics.answered(response.status_code, (time.perf_counter() - start) * 1000.0)
        return response

    async def drain(self) -> int:
        """Refuse new edits from now on (503); returns the requests still in flight."""
        self.draining = True
        return self.pending

    async def in_flight(self) -> int:
        return self.pending

    # -- steps -------------------------------------------------------------------------------
    async def _edit(self, request: Request) -> Response:
        self._admit_check()
        job = await self._parse(request)
        self._admit_check()  # parsing awaited: check again, then take the slot without awaiting
        self.pending += 1
        self.metrics.inflight.set(self.pending)
        start = time.perf_counter()
        try:
            outcome = await self._submit(job)
        finally:
            self.pending -= 1
            self.metrics.inflight.set(self.pending)
        if not outcome.ok:
            raise RequestError(outcome.status, outcome.error or "edit failed")
        seconds = time.perf_counter() - start
        self._latency_s = seconds if self._latency_s is None else 0.8 * self._latency_s + 0.2 * seconds
        return await self._answer(outcome, request)

    def _admit_check(self) -> None:
        if self.draining:
            raise RequestError(503, "the service is shutting down; retry on another instance", retry_after=self._retry_after())
        if self.pending >= self.limits.max_queue:
            raise RequestError(
                503,
                f"queue full: {self.pending} requests are waiting or being edited (limit max_queue={self.limits.max_queue})",
                limit="max_queue",
                retry_after=self._retry_after(),
            )

    async def _parse(self, request: Request) -> EditJob:
        limit = self.limits.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestError(413, f"upload of {declared} bytes is over the limit max_upload_bytes={limit}", limit="max_upload_bytes")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise RequestError(415, "send the edit as multipart/form-data with an 'image' file and a 'prompt' field")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RequestError(413, f"upload is over the limit max_upload_bytes={limit}", limit="max_upload_bytes")
        check_complete_body(bytes(body), request.headers.get("content-type", ""))
        fields, files = await _form(request, bytes(body))
        parsed = await asyncio.to_thread(parse_edit_form, fields, files, self.limits)
        return EditJob(request=parsed, filename=files["image"][0].filename)

    async def _submit(self, job: EditJob) -> EditOutcome:
        return await answer_within(self.editor.edit.remote(job), self.limits.request_timeout_s, self._retry_after())

    async def _answer(self, outcome: EditOutcome, request: Request) -> Response:
        png = await asyncio.to_thread(_png, outcome.image)
        accept = request.headers.get("accept", "")
        if "image/png" in accept and "application/json" not in accept:
            return Response(png, media_type="image/png", headers={"X-Lredit-Chosen": str(outcome.chosen)})
        payload = {"chosen": outcome.chosen, "image": base64.b64encode(png).decode("ascii"), "report": outcome.report}
        return Response(outputs.report_json(payload), media_type="application/json")

    def _retry_after(self) -> int:
        """Seconds a client should wait: the running mean (EWMA) of recent edits' time, 1..60."""
        return int(min(60, max(1, math.ceil(self._latency_s or 1.0))))


def build_app(config: ServeConfig):
    """The application lr-serve runs: Ingress -> Editor, sized and limited by `config`."""
    batching = config.batching
    editor_options = dict(
        ray_actor_options={"num_cpus": config.replica_cpus, "num_gpus": config.num_gpus},
        # Room for one batch running and the next one filling.
        max_ongoing_requests=2 * batching.max_candidates if batching.enabled else 2,
        graceful_shutdown_timeout_s=config.limits.request_timeout_s,
    )
    if config.replicas is not None:
        editor_options["num_replicas"] = config.replicas
    editor = EditorDeployment.options(**editor_options).bind(config)
    return Ingress.options(
        num_replicas=1,  # lr-serve drains this one replica on SIGTERM; the YAML may set more
        ray_actor_options={"num_cpus": 0},
        # The ingress answers past max_queue itself (503), so it must accept more than that.
        max_ongoing_requests=config.limits.max_queue + 32,
        graceful_shutdown_timeout_s=config.limits.request_timeout_s + 5,
    ).bind(editor, config)


def app_builder(args: dict):
    """Import path for the Serve config YAML: `lredit.serve.app:app_builder` with `args`."""
    return build_app(ServeConfig.from_args(args))
