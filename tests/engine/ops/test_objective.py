"""The per-image objective (engine.objective, numpy) against the same loss computed in torch with
transformers' CLIP on the tiny models; clip_vision's penultimate-block `tokens` output."""

import numpy as np
import pytest
import torch
from PIL import Image

from lredit.engine.ops.images import clip_pixels
from lredit.engine.ops.objective import RegionObjective, objective_texts
from lredit.errors import InputError

TEMPLATE = "a high quality image of {prompt}."
LOSS_ATOL = 1e-5  # numpy loss from the exported ONNX graphs vs torch + transformers, per term
TOKENS_FP32_ATOL = 1e-4  # clip_vision.tokens, ONNX Runtime fp32 vs torch (max abs)


def _images(n, seed):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, size=(n, 1, 1, 3))
    return [Image.fromarray(np.clip(b + rng.normal(0, 40, size=(40, 56, 3)), 0, 255).astype(np.uint8)) for b in base]


def _embeds(model_output):
    return model_output if isinstance(model_output, torch.Tensor) else model_output.pooler_output


def _torch_losses(clip, tokenizer, candidates, source, prompt, caption):
    """The paper's loss in torch, straight from transformers' CLIPModel (no lredit graph code)."""
    pixels = torch.from_numpy(clip_pixels([*candidates, source]))
    with torch.no_grad():
        embeds = _embeds(clip.get_image_features(pixel_values=pixels))
        hidden = clip.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
        ids = [tokenizer.encode(t).ids for t in (TEMPLATE.format(prompt=prompt), TEMPLATE.format(prompt=caption))]
        text = _embeds(clip.get_text_features(input_ids=torch.from_numpy(np.stack(ids))))
    cand, src = embeds[:-1], embeds[-1:]
    l_clip = 1 - torch.nn.functional.cosine_similarity(cand, text[:1])
    l_dir = 1 - torch.nn.functional.cosine_similarity(cand - src, text[:1] - text[1:])
    norm = hidden.norm(dim=2, keepdim=True)
    q = (hidden @ hidden.transpose(1, 2)) / torch.clamp(norm @ norm.transpose(1, 2), min=1e-8)
    l_str = ((q[:-1] - q[-1:]) ** 2).mean(dim=(1, 2))
    return l_clip.double().numpy(), l_str.double().numpy(), l_dir.double().numpy()


@pytest.fixture(scope="module")
def ort_clip(tiny_bundle):
    from lredit.engine.runtimes.ort_runtime import OrtSession

    return OrtSession(tiny_bundle / "onnx" / "clip_vision.onnx"), OrtSession(tiny_bundle / "onnx" / "clip_text.onnx")


def test_each_term_and_total_match_torch_transformers(tiny_models, ort_clip):
    vision, text = ort_clip
    candidates, source = _images(4, 1), _images(1, 2)[0]
    prompt, caption = "a bowl of strawberries", "a wooden table"
    out = vision.run({"pixels": clip_pixels([*candidates, source])})
    t, t_roi = objective_texts(prompt, caption, TEMPLATE)
    ids = np.stack([tiny_models.clip_tokenizer.encode(x).ids for x in (t, t_roi)])
    text_embeds = text.run({"input_ids": ids})["text_embeds"]
    weights = RegionObjective(clip=1.0, str=2.0, dir=0.5)
    terms = weights.losses(out["image_embeds"][:-1], out["tokens"][:-1], out["image_embeds"][-1], out["tokens"][-1],
                           text_embeds[0], text_embeds[1])
    ref_clip, ref_str, ref_dir = _torch_losses(tiny_models.clip, tiny_models.clip_tokenizer, candidates, source, prompt, caption)
    for name, got, ref in (("clip", terms.clip, ref_clip), ("str", terms.str, ref_str), ("dir", terms.dir, ref_dir)):
        assert got.shape == (4,)
        assert np.abs(got - ref).max() <= LOSS_ATOL, name
        assert np.ptp(ref) > 0, f"{name}: equal losses for different candidates make the check meaningless"
    assert np.abs(terms.total - (ref_clip + 2.0 * ref_str + 0.5 * ref_dir)).max() <= LOSS_ATOL
    assert ref_str.min() > 0


def test_direction_term_left_out_without_a_caption():
    rng = np.random.default_rng(0)
    embeds, tokens = rng.normal(size=(3, 8)), rng.normal(size=(3, 5, 6))
    src, src_tokens, text = rng.normal(size=8), rng.normal(size=(5, 6)), rng.normal(size=8)
    terms = RegionObjective().losses(embeds, tokens, src, src_tokens, text, None)
    assert terms.dir is None
    np.testing.assert_allclose(terms.total, terms.clip + terms.str, rtol=0, atol=1e-15)
    assert terms.entry(1)["dir"] is None and terms.entry(1)["total"] == pytest.approx(terms.total[1])
    assert objective_texts("cats", None, TEMPLATE) == ("a high quality image of cats.", None)
    assert objective_texts("cats", "  ", TEMPLATE)[1] is None
    with_dir = RegionObjective().losses(embeds, tokens, src, src_tokens, text, rng.normal(size=8))
    assert with_dir.dir is not None and not np.allclose(with_dir.total, terms.total)


def test_structure_loss_is_zero_for_the_source_and_direction_finite_for_an_unchanged_candidate():
    rng = np.random.default_rng(1)
    src, src_tokens = rng.normal(size=8), rng.normal(size=(5, 6))
    # a candidate identical to the source: no structure change; its image direction is zero
    terms = RegionObjective().losses(src[None], src_tokens[None] * 3.0, src, src_tokens, rng.normal(size=8), rng.normal(size=8))
    assert terms.str[0] == pytest.approx(0.0, abs=1e-12)  # self-similarity ignores token scale
    assert terms.dir[0] == pytest.approx(1.0)


def test_bad_shapes_and_weights_are_named():
    rng = np.random.default_rng(2)
    with pytest.raises(InputError, match="candidate tokens .* and source tokens"):
        RegionObjective().losses(rng.normal(size=(2, 8)), rng.normal(size=(2, 5, 6)), rng.normal(size=8),
                                 rng.normal(size=(4, 6)), rng.normal(size=8), None)
    with pytest.raises(InputError, match="objective weights.*str=-1"):
        RegionObjective(str=-1.0)


def test_clip_vision_tokens_are_the_penultimate_block_output(tiny_models, ort_clip):
    """`tokens` = transformers' hidden_states[-2] (all but the last encoder layer, no LayerNorm),
    [N, 1+P, D]; image_embeds unchanged (= get_image_features)."""
    from lredit.export.wrappers import ClipVisionGraph

    clip = tiny_models.clip
    pixels = clip_pixels(_images(3, 5))
    with torch.no_grad():
        embeds, tokens = ClipVisionGraph(clip)(torch.from_numpy(pixels))
        hidden = clip.vision_model(pixel_values=torch.from_numpy(pixels), output_hidden_states=True).hidden_states
        ref_embeds = _embeds(clip.get_image_features(pixel_values=torch.from_numpy(pixels)))
    vc = clip.config.vision_config
    assert tuple(tokens.shape) == (3, 1 + (vc.image_size // vc.patch_size) ** 2, vc.hidden_size)
    assert len(hidden) == vc.num_hidden_layers + 1
    torch.testing.assert_close(tokens, hidden[-2], atol=0, rtol=0)
    torch.testing.assert_close(embeds, ref_embeds, atol=1e-6, rtol=0)
    got = ort_clip[0].run({"pixels": pixels})
    assert np.abs(got["tokens"] - tokens.numpy()).max() <= TOKENS_FP32_ATOL
    assert np.abs(got["image_embeds"] - embeds.numpy()).max() <= TOKENS_FP32_ATOL
