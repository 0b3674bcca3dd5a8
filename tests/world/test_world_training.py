"""World training: a stopped run resumes to the same weights; the fast saliency path is the engine's."""

from dataclasses import replace

import pytest
import torch

from lredit.world import judge, train_dino
from lredit.world.data import ScenePool
from lredit.world.training import RunSpec, checkpoint_path, train


class Killed(Exception):
    """Stands for the session ending mid-run."""


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path):
    pool = ScenePool(12)
    spec = RunSpec("judge", steps=4, lr=1e-3, checkpoint_every=1, warmup=2)

    torch.manual_seed(0)
    straight = judge.Judge(8)
    train(spec, straight, judge.JudgeObjective(pool, straight, batch=4), tmp_path / "a", progress=False)

    torch.manual_seed(0)
    stopped = judge.Judge(8)
    objective = judge.JudgeObjective(pool, stopped, batch=4)

    def dies_at_step_2(rng):
        if rng.step == 2:
            raise Killed
        return objective(rng)

    with pytest.raises(Killed):
        train(spec, stopped, dies_at_step_2, tmp_path / "b", progress=False)
    assert torch.load(checkpoint_path(tmp_path / "b", "judge"), weights_only=False)["step"] == 2

    torch.manual_seed(1)  # a new session: different initial weights, overwritten by the checkpoint
    resumed = judge.Judge(8)
    result = train(spec, resumed, judge.JudgeObjective(pool, resumed, batch=4), tmp_path / "b", progress=False)
    assert result["steps"] == 4
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_finished_run_is_not_trained_again(tmp_path):
    pool = ScenePool(8)
    model = judge.Judge(8)
    spec = RunSpec("judge", steps=2, lr=1e-3, checkpoint_every=1, warmup=1)
    train(spec, model, judge.JudgeObjective(pool, model, batch=4), tmp_path, progress=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def must_not_run(rng):
        raise AssertionError("a finished run trained again")

    train(replace(spec), model, must_not_run, tmp_path, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_trained_saliency_row_is_the_engines_saliency():
    torch.manual_seed(0)
    model = train_dino.build_dino(64, 2)  # 32 x 32 patches, small input
    pixels = torch.randn(2, 3, 64, 64)
    eager = train_dino.cls_attention(model, pixels)
    model.set_attn_implementation("sdpa")
    row = train_dino.cls_attention_row(model, pixels)
    assert eager.shape == (2, 1024)
    torch.testing.assert_close(row, eager, rtol=1e-5, atol=1e-7)


def test_saliency_target_peaks_inside_an_object():
    from lredit.world.scenes import generate_scene

    for seed in range(10):
        scene = generate_scene(seed)
        target = train_dino.saliency_target(scene)
        assert target.shape == (1024,) and abs(target.sum() - 1) < 1e-9
        r, c = divmod(int(target.argmax()), 32)
        assert any(o.mask[r * 4:(r + 1) * 4, c * 4:(c + 1) * 4].any() for o in scene.objects)


def test_the_text_to_image_unet_starts_as_the_inpainting_unet_with_empty_conditioning():
    """Its conv_in keeps the latent filters: on a latent x it is the inpainting UNet on
    (x, mask 0, masked-image latent 0)."""
    from lredit.world.train_unet import build_unet, text_to_image_unet

    torch.manual_seed(0)
    inpainting = build_unet(8, 32).eval()
    t2i = text_to_image_unet(inpainting).eval()
    assert t2i.config.in_channels == 4 and inpainting.config.in_channels == 9
    x, t, text = torch.randn(2, 4, 8, 8), torch.tensor([10, 500]), torch.randn(2, 7, 32)
    with torch.no_grad():
        got = t2i(x, t, encoder_hidden_states=text).sample
        ref = inpainting(torch.cat([x, torch.zeros(2, 5, 8, 8)], dim=1), t, encoder_hidden_states=text).sample
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_the_decoder_fine_tune_leaves_the_encoder_and_so_the_latent_space_alone(tmp_path):
    from lredit.world import train_vae
    from lredit.world.data import sd_batch

    torch.manual_seed(0)
    model = train_vae.build_vae(64)
    pool = ScenePool(4, 64)
    means, stds = train_vae.encode_frozen(model, pool.images)
    objective = train_vae.DecoderObjective(means, stds, sd_batch(pool.images), train_vae.scene_weights(pool.scenes),
                                           train_vae.freeze_encoder(model), batch=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(RunSpec("vae_decoder", steps=2, lr=1e-2, warmup=1), model, objective, tmp_path, progress=False)
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("decoder.", "post_quant_conv.")) for k in moved), sorted(moved)[:5]
    assert any(k.startswith("decoder.") for k in moved)
    weights = train_vae.scene_weights(pool.scenes)
    assert float(weights.max()) == 1 + train_vae.OBJECT_WEIGHT and float(weights.min()) == 1.0
