"""The shipped world models: the `shapes` preset loads through the loaders, its files match their
sha256, its geometry is the engine's grid, its judge reads held-out objects, its DINO finds them."""

import numpy as np
import pytest
import torch

from lredit.errors import ModelSourceError
from lredit.export.models import SHIPPED, ModelSources, load_models, shipped_folder
from lredit.world.cases import Split, scene_seed
from lredit.world.judge import accuracy, load_judge
from lredit.world.scenes import generate_scene
from lredit.world.ship import verify


@pytest.fixture(scope="module")
def shapes():
    return load_models(ModelSources.parse("shapes"), sizes=6, channels=12, roi_size=8)


def heldout(count, start=0):
    return [generate_scene(scene_seed(Split.HELDOUT, i)) for i in range(start, start + count)]


def test_shapes_preset_is_a_shipped_folder_with_its_geometry():
    sources = ModelSources.parse("shapes")
    assert sources.preset is None and sources.root == shipped_folder("shapes")
    geometry = sources.geometry()
    assert geometry["working_size"] % 8 == 0 and geometry["steps"] > 0
    assert verify(sources.root) == []


def test_shapes_preset_loads_float32_trained_models(shapes):
    assert not shapes.random_weights
    assert all(p.dtype == torch.float32 for m in shapes.modules().values() for p in m.parameters())
    assert shapes.unet.config.in_channels == 9 and shapes.vae_scale_factor == 8
    assert shapes.vae.config.latent_channels == 4
    assert shapes.sd_text_encoder.config.hidden_size == shapes.unet.config.cross_attention_dim


def test_dino_grid_is_32_by_32_at_the_preset_geometry(shapes):
    geometry = ModelSources.parse("shapes").geometry()
    size = geometry.get("dino_size", 256)
    assert size // shapes.dino.config.patch_size == 32


def test_shipped_dino_attends_to_objects(shapes):
    from lredit.world.train_dino import hit_rate

    size = ModelSources.parse("shapes").geometry().get("dino_size", 256)
    assert hit_rate(shapes.dino, heldout(16), size) >= 0.9


def test_shipped_judge_reads_heldout_objects():
    judge = load_judge(shipped_folder("shapes") / "judge")
    figures = accuracy(judge, heldout(40, start=500))
    assert figures["objects"] >= 60
    assert figures["both"] >= 0.95, figures


def test_an_unknown_shipped_name_is_a_folder_error(tmp_path):
    with pytest.raises(ModelSourceError, match="neither a preset"):
        ModelSources.parse(str(tmp_path / "nope"))
    assert "shapes" in SHIPPED


def test_shipped_clip_binds_colour_to_shape(shapes):
    from lredit.world.data import clip_batch, templated

    right = 0
    scenes = heldout(20)
    with torch.no_grad():
        for scene in scenes:
            obj = scene.objects[0]
            held = {o.colour for o in scene.objects if o.shape == obj.shape}
            other = next(c for c in ("red", "green", "blue", "yellow", "purple") if c not in held)
            ids = np.stack([shapes.clip_tokenizer.encode(templated(f"a {c} {obj.shape}")).ids for c in (obj.colour, other)])
            logits = shapes.clip(input_ids=torch.tensor(ids), pixel_values=clip_batch([scene.image])).logits_per_image[0]
            right += int(logits[0] > logits[1])
    assert right / len(scenes) >= 0.8


def test_shapes_blend_is_the_world_with_its_text_to_image_unet(shapes):
    from lredit.config import EditConfig
    from lredit.engine.runtimes.reference.torch_backend import reference_pipeline

    sources = ModelSources.parse("shapes-blend")
    assert sources.root == shipped_folder("shapes") and sources.unet == sources.root / "sd" / "unet_t2i"
    blend = load_models(sources, sizes=6, channels=12, roi_size=8)
    assert blend.unet.config.in_channels == 4 and blend.unet.config.out_channels == 4
    assert blend.sources["unet"] == str(sources.unet)
    for a, b in zip(blend.vae.parameters(), shapes.vae.parameters()):  # the same VAE and text encoder
        assert torch.equal(a, b)
    scene = generate_scene(scene_seed(Split.HELDOUT, 0))
    cfg = EditConfig(**sources.geometry(), anchors=2).replace(steps=2)
    result = reference_pipeline(blend, cfg).edit(scene.pil(), "a red square", "blue ring", regions="rgn")
    assert result.editor == "sd-blend"
