"""Where a bundle stores each weight's bytes, to find a weight stored twice.

A graph holds an initializer either inside its .onnx file or as a (file, offset) reference into
an external data file. Two graph files that reference the same region of one data file share a
weight (the ORT variants do); the same bytes stored in two places are a duplicate.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx
from onnx import helper

from lredit.atomic import write_bytes_atomic

FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)


@dataclass(frozen=True)
class StoredWeight:
    graph: str
    """The .onnx file (relative to the bundle) that declares the initializer."""
    name: str
    store: str
    """The file holding its bytes: the graph itself, or its external data file."""
    offset: int
    """Byte offset in `store` (-1 when embedded in the graph's protobuf)."""
    nbytes: int
    digest: str


def _external(tensor: onnx.TensorProto) -> dict[str, str]:
    return {e.key: e.value for e in tensor.external_data}


def stored_weights(bundle: Path, graph: str) -> list[StoredWeight]:
    """The floating-point initializers of one graph file and where their bytes live. Tensors
    filled with one value (zero biases, unit scales) are left out: equal by construction, they
    say nothing about a copied weight."""
    bundle = Path(bundle)
    model = onnx.load(str(bundle / graph), load_external_data=False)
    found = []
    for tensor in model.graph.initializer:
        if tensor.data_type not in FLOAT_TYPES:
            continue
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            ext = _external(tensor)
            store = (Path(graph).parent / ext["location"]).as_posix()
            offset = int(ext.get("offset", 0))
            with open(bundle / store, "rb") as f:
                f.seek(offset)
                data = f.read(int(ext["length"])) if "length" in ext else f.read()
        else:
            store, offset = graph, -1
            data = onnx.numpy_helper.to_array(tensor).astype(dtype, copy=False).tobytes()
        values = np.frombuffer(data, dtype=dtype)
        if values.size == 0 or (values == values[0]).all():
            continue
        found.append(StoredWeight(graph, tensor.name, store, offset, len(data), hashlib.sha256(data).hexdigest()))
    return found


def duplicate_weights(bundle: Path, graphs: Iterable[str]) -> list[tuple[StoredWeight, StoredWeight]]:
    """Pairs of initializers with equal bytes stored in two places (another file, or another
    offset of the same file). Empty when no weight is stored twice."""
    by_digest: dict[str, dict[tuple[str, int], StoredWeight]] = defaultdict(dict)
    for graph in graphs:
        for weight in stored_weights(bundle, graph):
            by_digest[weight.digest].setdefault((weight.store, weight.offset), weight)
    pairs = []
    for places in by_digest.values():
        first, *others = places.values()
        pairs += [(first, other) for other in others]
    return pairs


def reference_shared_weights(graph: Path, donor: Path) -> int:
    """Rewrite `graph` so that every initializer whose bytes equal one in `donor`'s external
    weights file references that file instead of holding a copy; returns how many. Both graphs
    sit in one folder (the reference is a file name)."""
    graph, donor = Path(graph), Path(donor)
    if graph.parent != donor.parent:
        raise ValueError("a graph can share only the weights file of a graph beside it")
    offered = {w.digest: w for w in stored_weights(donor.parent, donor.name) if w.offset >= 0}
    model = onnx.load(str(graph), load_external_data=True)
    shared = 0
    for tensor in model.graph.initializer:
        if tensor.data_type not in FLOAT_TYPES:
            continue
        data = onnx.numpy_helper.to_array(tensor).tobytes()
        weight = offered.get(hashlib.sha256(data).hexdigest())
        if weight is None or weight.nbytes != len(data):
            continue
        dims, name, dtype = list(tensor.dims), tensor.name, tensor.data_type
        tensor.Clear()
        tensor.name, tensor.data_type = name, dtype
        tensor.dims.extend(dims)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", Path(weight.store).name), ("offset", str(weight.offset)), ("length", str(weight.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        shared += 1
    if shared:
        write_bytes_atomic(graph, model.SerializeToString())
    return shared
