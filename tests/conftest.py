import os
import sys
import types

import numpy as np
import pytest
from PIL import Image

from lredit.config import EditConfig

# `python -m pytest` puts the checkout root on sys.path, where the top-level `kernels/` folder
# (installed as lredit.kernels) shadows Hugging Face's `kernels` package, which transformers
# imports by that bare name. The tests import the installed lredit only, so the root goes.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]


@pytest.fixture()
def safe_path_env() -> dict:
    """The environment for a child `python -m ...` / `python -c ...` started in the checkout root:
    PYTHONSAFEPATH keeps that folder off its sys.path, for the reason above. (Not for `python
    script.py`: it also drops the script's own folder, which the cpp/tools scripts import from.)"""
    return {**os.environ, "PYTHONSAFEPATH": "1"}

# Small geometry for fast tests: 64 px inpainting (8x8 latents), 3 steps, 3 candidates.
FAST = dict(working_size=64, steps=3, anchors=3)


@pytest.fixture(scope="session", autouse=True)
def session_cache_in_tmp(tmp_path_factory):
    """ONNX Runtime's optimised-graph cache and the bundle stamps go under the test's tmp folder,
    never ~/.cache (tests write only under tmp)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LREDIT_SESSION_CACHE", str(tmp_path_factory.mktemp("session_cache")))
        yield


@pytest.fixture(scope="session")
def tiny_models():
    from lredit.export.models import ModelSources, load_models

    cfg = EditConfig()
    return load_models(ModelSources(preset="tiny"), sizes=len(cfg.half_sizes), channels=cfg.proj_channels, roi_size=cfg.roi_size)


@pytest.fixture(scope="session")
def reference(tiny_models):
    from lredit.engine.runtimes.reference.torch_backend import reference_pipeline

    return reference_pipeline(tiny_models, EditConfig(**FAST))


@pytest.fixture()
def photo():
    rng = np.random.default_rng(7)
    base = np.linspace(0, 255, 96 * 128 * 3).reshape(96, 128, 3)
    noise = rng.uniform(0, 60, size=base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A tiny fp32 bundle built for the FAST geometry (working_size 64)."""
    from lredit.export.exporter import ExportConfig, run_export
    from lredit.export.specs import ExportSettings
    from lredit.graphs import PIPELINE_GRAPHS

    out = tmp_path_factory.mktemp("tiny_bundle")
    run_export(ExportConfig(out=out, graphs=PIPELINE_GRAPHS, settings=ExportSettings(working_size=64)))
    return out


class DeviceArray(np.ndarray):
    """Stands for a CuPy array: `on_device` sees module 'cupy'; `.get()` is the host copy (counted)."""

    host_copies = 0

    def get(self):
        DeviceArray.host_copies += 1
        return np.asarray(self).view(np.ndarray).copy()


DeviceArray.__module__ = "cupy"


def device_array(array) -> DeviceArray:
    return np.ascontiguousarray(array).view(DeviceArray)


@pytest.fixture()
def fake_cupy(monkeypatch):
    """A stand-in 'cupy' module over numpy (installed in sys.modules for the test): GPU data
    flow checked on machines without a GPU. Its arrays are `fake_cupy.ndarray` (DeviceArray)."""
    cp = types.ModuleType("cupy")
    cp.ndarray = DeviceArray
    cp.asarray = lambda a, dtype=None: device_array(np.asarray(a, dtype=dtype))
    cp.concatenate = lambda arrays, axis=0: device_array(np.concatenate([np.asarray(a) for a in arrays], axis=axis))
    cp.repeat = lambda a, n, axis=None: device_array(np.repeat(np.asarray(a), n, axis=axis))
    cp.broadcast_to = lambda a, shape: device_array(np.broadcast_to(np.asarray(a), shape))
    cp.full = lambda shape, value, dtype=None: device_array(np.full(shape, value, dtype=dtype))
    cp.isfinite = np.isfinite
    cp.from_dlpack = lambda tensor: device_array(np.from_dlpack(tensor))
    monkeypatch.setitem(sys.modules, "cupy", cp)
    return cp


@pytest.fixture()
def loop_host_copies(fake_cupy, monkeypatch):
    """Host copies of fake_cupy arrays made inside each RowDenoiser.run call: one entry per call."""
    from lredit.engine.core.denoise import RowDenoiser

    counts, original_run = [], RowDenoiser.run

    def counted_run(self, *args, **kwargs):
        before = DeviceArray.host_copies
        latents = original_run(self, *args, **kwargs)
        counts.append(DeviceArray.host_copies - before)
        return latents

    monkeypatch.setattr(RowDenoiser, "run", counted_run)
    return counts
