"""What travels between the ingress and an editor replica. In: an `EditJob` (the decoded request
and the upload's name for the report). Out: an `EditOutcome`, the chosen image as an uint8 array
and the report lr-edit writes, or an error with its HTTP status. Plain data, cheap to pickle; PNG
encoding is left to the ingress (CPU) so the editor (GPU) goes on editing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lredit.config import EditConfig
from lredit.engine.core.batch import EditRequest
from lredit.engine.core.pipeline import EditResult
from lredit.engine.frontends import outputs
from lredit.errors import InputError


@dataclass(frozen=True)
class EditJob:
    request: EditRequest
    filename: str
    """The upload's file name, recorded as the report's `image`."""

    @property
    def candidates(self) -> int:
        """K of this request: its `anchors`, else the engine's default."""
        return int(self.request.overrides.get("anchors", EditConfig.anchors))


@dataclass(frozen=True)
class BatchInfo:
    """The batch a request ran in: requests and candidates (sum of anchors) together."""

    requests: int
    candidates: int


@dataclass(frozen=True)
class EditOutcome:
    status: int
    """200, or the HTTP status of the error (400 for a bad input, 500 for an engine failure)."""
    batch: BatchInfo
    image: np.ndarray | None = None
    """uint8 [S, S, 3], the chosen candidate."""
    chosen: int | None = None
    report: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def outcome_of(result: EditResult | Exception, *, filename: str, backend: str, models: dict, batch: BatchInfo) -> EditOutcome:
    """One edit_batch item as an outcome; a user error (InputError) is 400, anything else 500."""
    if isinstance(result, Exception):
        status = 400 if isinstance(result, InputError) else 500
        message = str(result) if isinstance(result, InputError) else f"{type(result).__name__}: {result}"
        return EditOutcome(status=status, batch=batch, error=message)
    report = outputs.build_report(result, image=filename, backend=backend, models=models)
    report["batch"] = {"requests": batch.requests, "candidates": batch.candidates}
    return EditOutcome(status=200, batch=batch, image=np.asarray(result.image, dtype=np.uint8), chosen=result.chosen, report=report)
