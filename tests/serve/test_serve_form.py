"""lr-serve without a server: request parsing and its limits, settings, the shipped Serve YAML."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lredit.errors import InputError

pytest.importorskip("ray.serve", reason="lr-serve needs the 'serve' extra: pip install -e '.[serve]'")

from lredit.serve.config import Batching, Limits, ServeConfig  # noqa: E402
from lredit.serve.form import RequestError, Upload, parse_edit_form  # noqa: E402

LIMITS = Limits(max_anchors=4, max_steps=8, max_pixels=100_000)
YAML = Path(__file__).resolve().parents[2] / "serve" / "serve_config.yaml"


def _png(width=40, height=30) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _parse(fields=None, image=b"png", limits=LIMITS):
    fields = {"prompt": "a cat", "anchors": "2", "steps": "3", **(fields or {})}
    files = {} if image is None else {"image": [Upload("in.png", _png() if image == b"png" else image)]}
    return parse_edit_form({k: [v] for k, v in fields.items() if v is not None}, files, limits)


def test_good_request_carries_its_overrides():
    request = _parse({"seed": "7", "guidance": "4.5", "source_caption": "a table", "regions": "rgn"})
    assert request.prompt == "a cat" and request.source_caption == "a table"
    assert dict(request.overrides) == {"seed": 7, "anchors": 2, "steps": 3, "guidance": 4.5, "regions": "rgn"}
    assert request.image.size == (40, 30) and request.image.mode == "RGB"


@pytest.mark.parametrize(
    "fields, image, status, field, limit, message",
    [
        ({}, None, 400, "image", None, "no image"),
        ({}, b"hello", 400, "image", None, "not an image"),
        ({}, _png()[:60], 400, "image", None, "truncated"),
        ({}, b"", 400, "image", None, "empty"),
        ({"prompt": ""}, b"png", 400, "prompt", None, "prompt is empty"),
        ({"prompt": None}, b"png", 400, "prompt", None, "no prompt"),
        ({"anchors": "0"}, b"png", 400, "anchors", None, "anchors=0 is too small"),
        ({"anchors": "5"}, b"png", 400, "anchors", "max_anchors", "max_anchors=4"),
        ({"anchors": None}, b"png", 400, "anchors", "max_anchors", "the default 9"),
        ({"steps": "9"}, b"png", 400, "steps", "max_steps", "max_steps=8"),
        ({"seed": "abc"}, b"png", 400, "seed", None, "not an integer"),
        ({"seed": "-1"}, b"png", 400, "seed", None, "too small"),
        ({"guidance": "nan"}, b"png", 400, "guidance", None, "out of range"),
        ({"guidance": "lots"}, b"png", 400, "guidance", None, "not a number"),
        ({"regions": "magic"}, b"png", 400, "regions", None, "regions='magic' is unknown"),
        ({"colour": "red"}, b"png", 400, "colour", None, "unknown form field"),
    ],
)
def test_bad_requests_name_the_field_or_limit(fields, image, status, field, limit, message):
    with pytest.raises(RequestError) as info:
        _parse(fields, image)
    assert (info.value.status, info.value.field, info.value.limit) == (status, field, limit)
    assert message in info.value.message
    assert info.value.body()["error"] == info.value.message


def test_pixel_limit_is_413_before_decoding():
    with pytest.raises(RequestError) as info:
        _parse(image=_png(400, 300))
    assert (info.value.status, info.value.limit) == (413, "max_pixels")
    assert "120000 pixels; the limit is 100000" in info.value.message


def test_duplicate_and_text_image_fields():
    with pytest.raises(RequestError, match="given 2 times"):
        parse_edit_form({"prompt": ["a", "b"]}, {"image": [Upload("a.png", _png())]}, LIMITS)
    with pytest.raises(RequestError, match="must be a file part"):
        parse_edit_form({"prompt": ["a"], "image": ["x"]}, {}, LIMITS)


def test_settings_are_validated():
    with pytest.raises(InputError, match="max_candidates=4 is below max_anchors=9"):
        ServeConfig(Path("b"), limits=Limits(max_anchors=9), batching=Batching(max_candidates=4)).validated()
    with pytest.raises(InputError, match="max_queue=0"):
        ServeConfig(Path("b"), limits=Limits(max_queue=0)).validated()
    with pytest.raises(InputError, match="backend='trt' needs device='cuda'"):
        ServeConfig(Path("b"), backend="trt").validated()
    with pytest.raises(InputError, match="unknown lr-serve setting 'max_anchor'"):
        ServeConfig.from_args({"bundle": "b", "max_anchor": 3})
    cfg = ServeConfig.from_args({"bundle": "b", "max_anchors": 3, "max_candidates": 6, "batching": False, "max_queue": 5})
    assert (cfg.limits.max_anchors, cfg.limits.max_queue) == (3, 5)
    assert cfg.batching == Batching(enabled=False, max_candidates=6)
    assert cfg.replicas is None  # left to the YAML's deployment settings


def test_shipped_serve_yaml_is_valid_for_ray_and_lredit():
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from lredit.serve.app import EditorDeployment, Ingress, app_builder

    document = yaml.safe_load(YAML.read_text())
    schema = ServeDeploySchema.model_validate(document)
    (app,) = schema.applications
    assert app.import_path == "lredit.serve.app:app_builder"
    assert {d.name for d in app.deployments} == {EditorDeployment.name, Ingress.name}
    editor = next(d for d in app.deployments if d.name == EditorDeployment.name)
    assert editor.autoscaling_config["min_replicas"] >= 1 and editor.ray_actor_options.num_gpus == 1
    config = ServeConfig.from_args(app.args)
    assert config.device == "cuda" and config.batching.max_candidates >= config.limits.max_anchors
    assert app_builder(app.args) is not None  # binds the deployments without loading the bundle


class _Response:
    """Stands in for a DeploymentResponse: awaitable, cancellable."""

    def __init__(self, result=None, error=None, delay_s=0.0):
        self.result, self.error, self.delay_s, self.cancelled = result, error, delay_s, False

    def cancel(self):
        self.cancelled = True

    def __await__(self):
        return self._wait().__await__()

    async def _wait(self):
        import asyncio

        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return self.result


def test_editor_answers_map_to_timeout_and_unavailable_errors():
    import asyncio

    from ray.exceptions import RayActorError
    from ray.serve.exceptions import BackPressureError

    from lredit.serve.app import answer_within

    assert asyncio.run(answer_within(_Response(result="outcome"), 1.0, 3)) == "outcome"
    slow = _Response(result="late", delay_s=5.0)
    with pytest.raises(RequestError) as info:
        asyncio.run(answer_within(slow, 0.05, 3))
    assert (info.value.status, info.value.limit) == (504, "request_timeout_s") and slow.cancelled
    assert "request_timeout_s=0.05" in info.value.message
    for error in (RayActorError(), BackPressureError(num_queued_requests=1, max_queued_requests=1)):
        with pytest.raises(RequestError) as info:
            asyncio.run(answer_within(_Response(error=error), 1.0, 3))
        assert info.value.status == 503 and info.value.retry_after == 3


# -- issue #24: one status per kind of refusal (docs/errors.md) ------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _crafted_png(width: int, height: int, extra: bytes = b"") -> bytes:
    """A PNG header claiming width x height over a tiny IDAT (no pixels are ever decoded)."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + extra + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _text_bomb() -> bytes:
    """A zTXt chunk of 40 kB that inflates to 64 MB."""
    import zlib

    return _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"\0" * (64 << 20), 9))


@pytest.mark.parametrize(
    "image, limit, message",
    [
        (_png(16, 3000), "max_aspect_ratio", "an aspect ratio of 187.5; the limit is max_aspect_ratio=16"),
        (_crafted_png(16, 2_000_000), "max_side", "16x2000000 pixels; the longest side allowed is max_side=16384"),
        (_crafted_png(20_000, 10_000), "max_pixels", "is too large"),  # past Pillow's own bomb limit
        (_crafted_png(40, 30, _text_bomb()), "decompressed_size", "decompresses past Pillow's limit"),
    ],
)
def test_too_large_images_of_every_kind_are_413_naming_the_limit(image, limit, message):
    limits = Limits(max_anchors=4, max_steps=8)  # the service defaults for sizes
    with pytest.raises(RequestError) as info:
        _parse(image=image, limits=limits)
    assert (info.value.status, info.value.field, info.value.limit) == (413, "image", limit)
    assert message in info.value.message


def test_size_limits_are_settings():
    assert ServeConfig.from_args({"bundle": "b", "max_side": 4096, "max_aspect_ratio": 4}).limits.max_side == 4096
    with pytest.raises(InputError, match=r"max_aspect_ratio=0.5 \(expected a number >= 1\)"):
        ServeConfig.from_args({"bundle": "b", "max_aspect_ratio": 0.5})


def test_a_body_cut_short_is_a_json_400_that_closes_the_connection():
    from lredit.serve.app import _error
    from lredit.serve.form import check_complete_body

    body = b'--XX\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na cat\r\n--XX--\r\n'
    check_complete_body(body, "multipart/form-data; boundary=XX")
    with pytest.raises(RequestError, match="ends before its closing boundary") as info:
        check_complete_body(body[:40], "multipart/form-data; boundary=XX")
    response = _error(info.value)
    assert response.status_code == 400 and response.headers["connection"] == "close"
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(RequestError, match="without a boundary"):
        check_complete_body(body, "multipart/form-data")
