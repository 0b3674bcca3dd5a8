import numpy as np
import pytest
import torch

from lredit.config import EditConfig
from lredit.errors import InputError, ModelSourceError
from lredit.export.models import ModelSources, load_models, save_models


def test_local_folders_load_offline_and_match_the_preset(tiny_models, tmp_path, photo):
    from lredit.engine.runtimes.reference.torch_backend import reference_pipeline

    save_models(tiny_models, tmp_path / "models")
    torch.save({f"module.anchor_net.{k}": v for k, v in tiny_models.region_net.head.state_dict().items()},
               tmp_path / "models" / "rgn.pt")
    cfg = EditConfig(working_size=64, steps=2, anchors=2)
    loaded = load_models(ModelSources.parse(str(tmp_path / "models")), sizes=6, channels=12, roi_size=8)
    assert loaded.random_weights is False and loaded.sources["rgn"].endswith("rgn.pt")
    assert loaded.dino.config._attn_implementation == "eager"
    a = reference_pipeline(tiny_models, cfg).edit(photo, "a cat")
    b = reference_pipeline(loaded, cfg).edit(photo, "a cat")
    assert a.anchors.tolist() == b.anchors.tolist()
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_missing_family_folder_is_named(tmp_path):
    (tmp_path / "dino").mkdir()
    with pytest.raises(ModelSourceError, match="no clip model folder"):
        load_models(ModelSources.parse(str(tmp_path)), sizes=6, channels=12, roi_size=8)


def _unet(in_channels: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(in_channels=in_channels, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))


def test_text_to_image_unet_loads_for_sd_blend_and_other_unets_are_refused(tiny_models, tmp_path, photo):
    from lredit.engine.runtimes.reference.torch_backend import reference_pipeline

    save_models(tiny_models, tmp_path)
    _unet(4).save_pretrained(tmp_path / "sd" / "unet")
    loaded = load_models(ModelSources.parse(str(tmp_path)), sizes=6, channels=12, roi_size=8)
    result = reference_pipeline(loaded, EditConfig(working_size=64, steps=2, anchors=2)).edit(photo, "a cat", regions="rgn")
    assert result.editor == "sd-blend"
    _unet(5).save_pretrained(tmp_path / "sd" / "unet")
    with pytest.raises(ModelSourceError, match="takes 5 input channels and gives 4; lredit edits with an inpainting UNet "
                                               "\\(9 in.*or a text-to-image one \\(4 in"):
        load_models(ModelSources.parse(str(tmp_path)), sizes=6, channels=12, roi_size=8)


def test_presets_are_seeded_and_leave_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    a = load_models(ModelSources(preset="tiny", seed=3), sizes=6, channels=12, roi_size=8)
    assert torch.equal(torch.rand(1), expected)
    b = load_models(ModelSources(preset="tiny", seed=3), sizes=6, channels=12, roi_size=8)
    for (name, x), (_, y) in zip(a.unet.state_dict().items(), b.unet.state_dict().items()):
        assert torch.equal(x, y), name


def test_config_validation_names_field_value_and_range():
    with pytest.raises(InputError, match=r"anchors=0 \(expected an integer >= 1\).*guidance=-1"):
        EditConfig(anchors=0, guidance=-1).validated()
    with pytest.raises(InputError, match="compat preset 'paper' is unknown"):
        EditConfig.preset("paper")
    authors = EditConfig.preset("authors")
    assert not authors.fix_anchor_axes and authors.rgn_sampling == "gumbel" and authors.max_window == 15
