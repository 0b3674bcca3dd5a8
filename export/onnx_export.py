"""One graph: torch module -> ONNX file (fp32, or fp16 with fragile ops kept fp32) -> parity."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from lredit.atomic import set_file_mode
from lredit.config import CPU_PROVIDERS

from .specs.base import GraphSpec

log = logging.getLogger(__name__)
TWO_GB = 2 * 1024**3 - 1


def export_onnx(spec: GraphSpec, module: torch.nn.Module, sizes: dict, path: Path, precision: str, opset: int,
                external_weights: bool = False) -> list[Path]:
    """Write `path` (plus `<name>.data` holding the weights when they pass 1 GB, or always with
    `external_weights`: a graph whose ORT variant shares them); return the files, with the mode
    the umask gives.

    torch writes a graph over 2 GB as one file per tensor, so every export goes to a scratch
    folder first and is re-saved in the bundle's layout (converted to fp16 on the way if asked)."""
    rng = np.random.default_rng(0)
    feeds = spec.dummy_inputs(sizes, rng)
    args = tuple(torch.from_numpy(feeds[t.name]) for t in spec.inputs)
    module = module.float().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{spec.name}-raw-") as scratch:
        raw = Path(scratch) / "model.onnx"
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
            torch.onnx.export(
                module,
                args,
                str(raw),
                input_names=[t.name for t in spec.inputs],
                output_names=[t.name for t in spec.outputs],
                dynamic_axes=spec.onnx_dynamic_axes(),
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        large = sum(f.stat().st_size for f in Path(scratch).iterdir()) > TWO_GB // 2
        if large and precision == "fp16" and spec.fp16:
            # The fp16 converter places its casts from value_info; in memory, shape inference
            # serialises the whole model, which protobuf refuses past 2 GB, so infer on disk.
            onnx.shape_inference.infer_shapes_path(str(raw), str(raw))
        model = onnx.load(str(raw), load_external_data=True)
    if precision == "fp16" and spec.fp16:
        model = _to_fp16(spec, model, large=large)
    _save(model, path, external_weights)
    files = [p for p in (path, _data_path(path)) if p.exists()]
    set_file_mode(*files)  # onnx writes the .data file 0600
    return files


def _data_path(path: Path) -> Path:
    return path.with_name(path.name + ".data")


def _to_fp16(spec: GraphSpec, model: onnx.ModelProto, large: bool) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    return convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(spec.fp16_keep_fp32),
        disable_shape_infer=large,  # already inferred on disk (see export_onnx)
    )


def _save(model: onnx.ModelProto, path: Path, external: bool) -> None:
    large = sum(t.ByteSize() for t in model.graph.initializer) > TWO_GB // 2
    if large or external:
        # Every initializer, however small, so that a variant graph referencing this file holds none itself.
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=_data_path(path).name, size_threshold=0)
    else:
        onnx.save_model(model, str(path))


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=list(CPU_PROVIDERS))


def check_parity(spec: GraphSpec, module: torch.nn.Module, sizes: dict, path: Path, precision: str, seed: int) -> dict:
    """Run the ONNX graph on ONNX Runtime and the torch module on the same fresh random inputs
    (at a batch other than the export batch); return the worst errors per output."""
    rng = np.random.default_rng(seed)
    dynamic = {a.name: a.other_point(sizes) for a in spec.axes}
    feeds = spec.dummy_inputs(sizes, rng, dynamic=dynamic)
    tol = spec.tolerance[precision if spec.fp16 else "fp32"]
    with torch.no_grad():
        ref = module.float().eval()(*(torch.from_numpy(feeds[t.name]) for t in spec.inputs))
    ref = (ref,) if isinstance(ref, torch.Tensor) else ref
    got = ort_session(path).run(None, feeds)
    report = {}
    for t, r, g in zip(spec.outputs, ref, got):
        r = r.float().numpy()
        g = np.asarray(g, dtype=np.float32)
        if r.shape != g.shape:
            report[t.name] = {"ok": False, "error": f"shape {g.shape} != torch {r.shape}"}
            continue
        diff = np.abs(g.astype(np.float64) - r)
        bound = tol.atol + tol.rtol * np.abs(r)
        report[t.name] = {
            "max_abs": float(diff.max()),
            "max_rel": float((diff / np.maximum(np.abs(r), 1e-6)).max()),
            "atol": tol.atol,
            "rtol": tol.rtol,
            "finite": bool(np.isfinite(g).all()),
            "ok": bool(np.isfinite(g).all() and (diff <= bound).all()),
            "inputs": {k: list(v.shape) for k, v in feeds.items()},
        }
        log.info("%s.%s: max abs %.3g (atol %.1g)", spec.name, t.name, diff.max(), tol.atol)
    return report
