"""A multipart edit request -> an EditRequest, or a RequestError that names the field or limit.

Pure: takes the text fields and the uploaded file's bytes, so it is tested without a server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from lredit.config import REGION_MODES, EditConfig
from lredit.engine.core.batch import EditRequest
from lredit.engine.core.pipeline import validate_prompt
from lredit.engine.ops.images import ImageTooLarge, load_image
from lredit.errors import InputError

from .config import Limits

TEXT_FIELDS = ("prompt", "source_caption", "seed", "anchors", "steps", "guidance", "regions")
FILE_FIELD = "image"
MAX_SEED = 2**63 - 1


class RequestError(Exception):
    """A request the service answers with an error status and a JSON body naming the cause."""

    def __init__(self, status: int, message: str, *, field: str | None = None, limit: str | None = None,
                 retry_after: int | None = None, close: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.limit = limit
        self.retry_after = retry_after
        self.close = close
        """Answer with Connection: close (the rest of the connection's bytes are not a request)."""

    def body(self) -> dict:
        return {"error": self.message, "status": self.status, "field": self.field, "limit": self.limit}


def check_complete_body(body: bytes, content_type: str) -> None:
    """A multipart body ends with its closing boundary. The multipart parser silently drops a
    part cut short, so a body truncated by a Content-Length shorter than what was sent would be
    answered as if a field were missing."""
    boundary = _boundary(content_type)
    if boundary is None:
        raise RequestError(400, "multipart/form-data without a boundary parameter in Content-Type")
    if not body.rstrip(b"\r\n").endswith(b"--" + boundary + b"--"):
        raise RequestError(400, f"the multipart body ({len(body)} bytes) ends before its closing boundary: the upload was "
                           "cut short, or Content-Length is shorter than the body sent", close=True)


def _boundary(content_type: str) -> bytes | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value.strip('"'):
            return value.strip('"').encode("latin-1", "replace")
    return None


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def parse_edit_form(fields: Mapping[str, Sequence[str]], files: Mapping[str, Sequence[Upload]], limits: Limits) -> EditRequest:
    """Validate every field against `limits` and decode the image (RGB, EXIF applied)."""
    unknown = sorted((set(fields) | set(files)) - {*TEXT_FIELDS, FILE_FIELD})
    if unknown:
        raise RequestError(400, f"unknown form field(s) {unknown}; expected {FILE_FIELD!r} and {list(TEXT_FIELDS)}", field=unknown[0])
    for name, values in [*fields.items(), *files.items()]:
        if len(values) > 1:
            raise RequestError(400, f"form field {name!r} given {len(values)} times; give it once", field=name)
    if FILE_FIELD in fields:
        raise RequestError(400, "'image' must be a file part (multipart/form-data with a filename), not a text field", field="image")
    if FILE_FIELD not in files:
        raise RequestError(400, "no image: send the picture as the multipart file field 'image'", field="image")
    text = {name: values[0] for name, values in fields.items()}
    prompt = text.get("prompt")
    if prompt is None:
        raise RequestError(400, "no prompt: send the edit as the form field 'prompt', e.g. 'a bowl of strawberries'", field="prompt")
    try:
        validate_prompt(prompt)
    except InputError as exc:
        raise RequestError(400, str(exc), field="prompt") from None
    overrides = _overrides(text, limits)
    image = _decode(files[FILE_FIELD][0], limits)
    caption = text.get("source_caption") or None
    return EditRequest(image=image, prompt=prompt, source_caption=caption, overrides=overrides)


def _overrides(text: Mapping[str, str], limits: Limits) -> dict:
    out: dict = {}
    if "seed" in text:
        out["seed"] = _integer(text, "seed", 0, MAX_SEED)
    for name, limit in (("anchors", "max_anchors"), ("steps", "max_steps")):
        high = getattr(limits, limit)
        if name in text:
            out[name] = _integer(text, name, 1, high, limit=limit)
        elif getattr(EditConfig, name) > high:
            default = getattr(EditConfig, name)
            raise RequestError(400, f"{name} not given: the default {default} is over this service's limit {limit}={high}; "
                               f"pass {name}", field=name, limit=limit)
    if "guidance" in text:
        try:
            guidance = float(text["guidance"])
        except ValueError:
            raise RequestError(400, f"guidance={text['guidance']!r} is not a number", field="guidance") from None
        if not (math.isfinite(guidance) and 0.0 <= guidance <= 100.0):
            raise RequestError(400, f"guidance={guidance!r} is out of range (expected 0..100; <= 1 turns guidance off)", field="guidance")
        out["guidance"] = guidance
    if "regions" in text:
        if text["regions"] not in REGION_MODES:
            raise RequestError(400, f"regions={text['regions']!r} is unknown; expected one of {list(REGION_MODES)}", field="regions")
        out["regions"] = text["regions"]
    return out


def _integer(text: Mapping[str, str], name: str, low: int, high: int, *, limit: str | None = None) -> int:
    raw = text[name].strip()
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(400, f"{name}={text[name]!r} is not an integer", field=name) from None
    if value < low:
        raise RequestError(400, f"{name}={value} is too small (expected >= {low})", field=name)
    if value > high:
        where = f"this service's limit {limit}={high}" if limit else f"the largest allowed, {high}"
        raise RequestError(400, f"{name}={value} is over {where}", field=name, limit=limit)
    return value


def _decode(upload: Upload, limits: Limits):
    if not upload.data:
        raise RequestError(400, f"the image file {upload.filename!r} is empty", field="image")
    try:
        return load_image(upload.data, max_pixels=limits.max_pixels, name=repr(upload.filename),
                          max_side=limits.max_side, max_aspect_ratio=limits.max_aspect_ratio)
    except ImageTooLarge as exc:  # pixels, side, aspect ratio or a decompression bomb: one status
        raise RequestError(413, str(exc), field="image", limit=exc.limit) from None
    except InputError as exc:
        raise RequestError(400, str(exc), field="image") from None
