import numpy as np
import pytest
from PIL import Image

from lredit.config import EditConfig

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
