"""The safetensors file format in numpy, so RGN checkpoints are written and read without torch.

Layout (https://github.com/huggingface/safetensors): 8-byte little-endian header length N, then N
bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}
(padded with spaces to a multiple of 8), then the raw little-endian tensor bytes, contiguous.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomic
from .errors import InputError

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}
MAX_HEADER = 100_000_000  # the reference implementation's limit


def encode(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The bytes of a safetensors file holding `tensors` (names sorted, data contiguous)."""
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise InputError("safetensors metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    chunks, offset = [], 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        code = _CODES.get(array.dtype.newbyteorder("<"))
        if code is None:
            raise InputError(f"tensor {name!r} has dtype {array.dtype}, which safetensors I/O here does not write")
        data = np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def decode(data: bytes, name: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) from the bytes of a safetensors file; InputError if malformed."""
    if len(data) < 8:
        raise InputError(f"{name} is not a safetensors file (only {len(data)} bytes)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER or 8 + size > len(data):
        raise InputError(f"{name} is not a safetensors file (header length {size} does not fit its {len(data)} bytes)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{name} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise InputError(f"{name} is not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + size :]
    tensors, spans = {}, []
    for key, info in header.items():
        try:
            dtype, shape, (begin, end) = _DTYPES[info["dtype"]], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{name}: tensor {key!r} has a malformed or unsupported entry {info!r}") from None
        if not 0 <= begin <= end <= len(body) or end - begin != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise InputError(f"{name}: tensor {key!r} has offsets {[begin, end]} that do not match {shape} x {dtype}")
        tensors[key] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).copy()
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise InputError(f"{name}: tensor data overlaps or leaves a gap at byte {covered}")
        covered = end
    if covered != len(body):
        raise InputError(f"{name}: {len(body) - covered} trailing bytes after the last tensor")
    return tensors, dict(metadata)


def save_file(path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
    """Write atomically (temp file beside `path`, then rename)."""
    write_bytes_atomic(Path(path), encode(tensors, metadata))


def load_file(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode(data, str(path))
