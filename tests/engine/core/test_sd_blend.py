"""sd-blend: a 4-channel text-to-image UNet as the base editor, by per-step latent blending
(engine/core/denoise.py), against the plain torch loop on diffusers' UNet and scheduler
(engine/runtimes/reference/blend.py), the exported graph, the runtime's edit and the editor choice."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from lredit.config import EditConfig
from lredit.engine.core.batch import EditRequest
from lredit.engine.frontends.editor import Editor
from lredit.errors import InputError

FAST = dict(working_size=64, steps=3, anchors=3)
# Latent parity of the loop (fp32, 3 steps): the numpy schedulers against diffusers', one UNet.
LOOP_ATOL = 1e-4
# The runtime's edit against the torch reference (fp32 bundle): uint8 levels per candidate pixel.
MAX_LEVELS_FP32 = 2


def _models(preset: str):
    from lredit.export.models import ModelSources, load_models

    cfg = EditConfig()
    return load_models(ModelSources(preset=preset), sizes=len(cfg.half_sizes), channels=cfg.proj_channels, roi_size=cfg.roi_size)


@pytest.fixture(scope="module")
def blend_models():
    return _models("tiny-blend")


@pytest.fixture(scope="module")
def blend_reference_pipeline(blend_models):
    from lredit.engine.runtimes.reference.torch_backend import reference_pipeline

    return reference_pipeline(blend_models, EditConfig(**FAST))


@pytest.fixture(scope="module")
def blend_bundle(tmp_path_factory):
    from lredit.export.exporter import ExportConfig, run_export
    from lredit.export.specs import ExportSettings

    out = tmp_path_factory.mktemp("blend_bundle")
    run_export(ExportConfig(out=out, models="tiny-blend", settings=ExportSettings(working_size=64)))
    return out


def _staged(pipeline, photo, cfg: EditConfig, pairs=((0, 0), (1, 2), (2, 5))):
    prep = pipeline.prepare(photo, "a bowl of strawberries", None, cfg)
    return prep, pipeline.inpaint_rows(prep, np.asarray(pairs, dtype=np.int64))


def test_the_blend_unet_graph_has_four_channels_and_matches_torch(blend_bundle, blend_models):
    import onnxruntime as ort

    from lredit.export.specs import SPECS, ExportSettings

    manifest = json.loads((blend_bundle / "manifest.json").read_text())
    assert manifest["pipeline"]["editor"] == "sd-blend"
    assert manifest["graphs"]["unet"]["inputs"][0]["opt_shape"][1] == 4
    spec, settings = SPECS["unet"], ExportSettings(working_size=64)
    feeds = spec.dummy_inputs(spec.static_sizes(blend_models, settings), np.random.default_rng(5), dynamic={"batch": 6})
    session = ort.InferenceSession(str(blend_bundle / manifest["graphs"]["unet"]["file"]), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)[0]
    with torch.no_grad():
        ref = spec.wrap(blend_models, settings)(*(torch.from_numpy(feeds[t.name]) for t in spec.inputs)).numpy()
    assert got.shape == (6, 4, 8, 8) and np.std(ref) > 0
    assert np.abs(got - ref).max() <= 1e-4


@pytest.mark.parametrize("scheduler", ["pndm", "ddim", "euler", "dpmpp_2m"])
def test_the_row_denoiser_blends_as_the_torch_reference_loop(blend_models, blend_reference_pipeline, photo, scheduler):
    """The engine's loop (numpy scheduler, the UNet as a session) against the plain torch loop on
    diffusers' scheduler and add_noise."""
    from lredit.engine.ops.schedulers import make_scheduler
    from lredit.engine.ops.timing import StageTimer
    from lredit.engine.runtimes.reference.blend import blend_reference
    from lredit.export.diffusers_schedulers import diffusers_scheduler
    from lredit.export.scheduler_tables import scheduler_tables

    pipe = blend_reference_pipeline
    cfg = pipe.config.replace(scheduler=scheduler, steps=4)
    _, staged = _staged(pipe, photo, cfg)
    rows = staged.rows
    assert not rows.conditioned and rows.blended
    alphas = scheduler_tables(blend_models.scheduler_config)["alphas_cumprod"]
    numpy_pipe = pipe.with_sessions(assets=dataclasses.replace(
        pipe.assets, make_scheduler=lambda name: make_scheduler(name, dict(blend_models.scheduler_config), alphas)))
    den = numpy_pipe.denoiser(cfg, StageTimer(), None)
    den.start(rows)
    got = den.run()
    ref = blend_reference(
        blend_models.unet, diffusers_scheduler(blend_models.scheduler_config, scheduler),
        source=torch.from_numpy(np.array(rows.source_latents)), blend_mask=torch.from_numpy(rows.blend_masks),
        noise=torch.from_numpy(rows.noise), context=torch.from_numpy(np.array(rows.context)), steps=4, guidance=cfg.guidance)
    assert np.abs(got - ref.numpy()).max() <= LOOP_ATOL
    assert np.abs(got - np.array(rows.source_latents)).max() > 0.1, "the box was generated, not copied"


def test_outside_the_box_the_latent_is_the_source_and_the_pixels_after_paste_back(blend_reference_pipeline, photo):
    from lredit.engine.ops.timing import StageTimer

    pipe = blend_reference_pipeline
    cfg = pipe.config
    _, staged = _staged(pipe, photo, cfg)
    rows = staged.rows
    den = pipe.denoiser(cfg, StageTimer(), None)
    den.start(rows)
    latents = den.run()
    outside = rows.blend_masks[:, 0] < 0.5
    assert outside.any() and (~outside).any()
    source = np.broadcast_to(rows.source_latents, latents.shape)
    np.testing.assert_array_equal(latents.transpose(0, 2, 3, 1)[outside], source.transpose(0, 2, 3, 1)[outside])
    # the blend mask covers every latent cell a box pixel falls in
    f = pipe.assets.vae_scale_factor
    assert np.all(rows.blend_masks[:, 0].repeat(f, 1).repeat(f, 2) >= staged.masks)

    result = pipe.edit(photo, "a bowl of strawberries", regions="rgn", paste_back=True)
    work = np.asarray(result.source)
    for k, image in enumerate(result.candidates):
        x1, y1, x2, y2 = result.boxes_px[k]
        keep = np.ones(work.shape[:2], bool)
        keep[y1:y2 + 1, x1:x2 + 1] = False
        np.testing.assert_array_equal(np.asarray(image)[keep], work[keep])


def test_the_runtime_edit_matches_the_torch_reference(blend_bundle, blend_reference_pipeline, photo):
    editor = Editor.from_bundle(blend_bundle, backend="ort")
    assert editor.pipeline.assets.unet_channels == 4
    for regions in ("rgn", "search"):
        got = editor.edit(photo, "a bowl of strawberries", regions=regions, **FAST)
        ref = blend_reference_pipeline.edit(photo, "a bowl of strawberries", regions=regions)
        assert got.editor == ref.editor == "sd-blend"
        assert got.boxes_px.tolist() == ref.boxes_px.tolist() and got.chosen == ref.chosen
        for a, b in zip(got.candidates, ref.candidates):
            assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= MAX_LEVELS_FP32


def test_edit_batch_blends_each_request_as_its_own_edit(blend_bundle, photo):
    editor = Editor.from_bundle(blend_bundle, backend="ort")
    requests = [EditRequest(photo, "a cat", overrides={"regions": "rgn", "seed": s, **FAST}) for s in (0, 1)]
    batch = editor.edit_batch(requests)
    for request, got in zip(requests, batch):
        alone = editor.edit(photo, request.prompt, **request.overrides)
        for a, b in zip(got.candidates, alone.candidates):
            assert np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max() <= MAX_LEVELS_FP32


def test_the_editor_follows_the_unet_and_a_forced_one_it_cannot_run_is_refused(blend_reference_pipeline, reference, photo):
    with pytest.raises(InputError, match="editor='inpaint' needs an inpainting UNet \\(9 input channels\\); this one is a "
                                         "text-to-image UNet \\(4\\): use --editor sd-blend"):
        blend_reference_pipeline.edit(photo, "a cat", editor="inpaint")
    assert reference.edit(photo, "a cat", regions="rgn").editor == "inpaint"
    # forced over an inpainting UNet, sd-blend blends on top of the mask conditioning
    forced = reference.edit(photo, "a cat", regions="rgn", editor="sd-blend")
    assert forced.editor == "sd-blend"
    prep, staged = _staged(reference, photo, reference.config.replace(editor="sd-blend"))
    assert staged.rows.conditioned and staged.rows.blended


def test_lr_edit_editor_flag_and_bundle_defaults(blend_bundle, tmp_path, photo):
    from lredit.engine.frontends.cli import main

    photo.save(tmp_path / "in.png")
    code = main([str(tmp_path / "in.png"), "a cat", "--bundle", str(blend_bundle), "--out", str(tmp_path / "out"),
                 "--regions", "rgn", "--steps", "2", "--anchors", "2", "--no-progress"])
    assert code == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["editor"] == "sd-blend" and report["config"]["editor"] == "auto"
    code = main([str(tmp_path / "in.png"), "a cat", "--bundle", str(blend_bundle), "--out", str(tmp_path / "out2"),
                 "--editor", "inpaint", "--no-progress"])
    assert code == 2
