"""CLIP for the world: transformers CLIPModel trained contrastively on scenes and their captions
and on object crops and object captions, the SD text encoder a copy of its text tower.

Captions overlap across a batch (two scenes may both hold a red circle, and "a red circle" is true
of every scene that holds one), so the loss is CLIP's symmetric cross-entropy with soft targets:
text j is a positive of image i when every object it names is in image i and its background, if
it names one, is image i's. A single-object caption against a whole scene is what the engine's
objective asks of CLIP ("a green triangle" vs an edited scene), so those pairs are trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel

from lredit.tokenizer import ClipTokenizer

from .data import ScenePool, clip_batch, loose_crop, templated
from .scenes import Scene
from .training import StepRng

TOKENS = dict(vocab_size=49408, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
TRAIN_TOKENS = 32
"""Token positions trained: CLIP's text attention is causal, so the outputs at the first 32
positions (every world caption and its EOS fit) are the same as with the engine's 77."""
TEXT = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128, hidden_act="quick_gelu")


def build_clip() -> CLIPModel:
    config = CLIPConfig(
        text_config=dict(**TEXT, **TOKENS),
        vision_config=dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
                           image_size=224, patch_size=16, hidden_act="quick_gelu"),
        projection_dim=64,
    )
    return CLIPModel(config)


def text_encoder_from(clip: CLIPModel) -> CLIPTextModel:
    """The SD text encoder: a CLIPTextModel holding a copy of CLIP's text tower."""
    text = CLIPTextModel(CLIPTextConfig(**TEXT, **TOKENS))
    text.load_state_dict(clip.text_model.state_dict())
    return text


@dataclass(frozen=True)
class Described:
    """What a caption says or an image holds: its (shape, colour) set and background (None = unsaid)."""

    objects: frozenset
    background: str | None


def scene_text(scene: Scene, rng: np.random.Generator) -> tuple[str, Described]:
    """The full caption, the objects without the background, or one object's caption."""
    kind = rng.integers(3)
    every = frozenset((o.shape, o.colour) for o in scene.objects)
    if kind == 0:
        return scene.caption, Described(every, scene.background)
    if kind == 1:
        listed = " and ".join(o.caption for o in scene.objects)
        return listed, Described(every, None)
    one = scene.objects[rng.integers(len(scene.objects))]
    return one.caption, Described(frozenset({(one.shape, one.colour)}), None)


def positives(images: list[Described], texts: list[Described]) -> torch.Tensor:
    """[I, T] 1 where text j is true of image i."""
    return torch.tensor([[float(t.objects <= i.objects and t.background in (None, i.background)) for t in texts] for i in images])


@dataclass(frozen=True)
class ClipObjective:
    pool: ScenePool
    model: CLIPModel
    tokenizer: ClipTokenizer
    batch: int = 24

    def texts(self, captions: list[str]) -> torch.Tensor:
        ids = np.stack([self.tokenizer.encode(templated(c)).ids for c in captions])
        if (ids[:, TRAIN_TOKENS - 1] != TOKENS["eos_token_id"]).any():
            raise ValueError(f"a caption does not fit in {TRAIN_TOKENS} tokens: {captions}")
        return torch.tensor(ids[:, :TRAIN_TOKENS], dtype=torch.long)

    def __call__(self, rng: StepRng) -> torch.Tensor:
        scenes = self.pool.sample(rng.numpy, self.batch)
        images, held, captions, said = [], [], [], []
        for scene in scenes:
            caption, described = scene_text(scene, rng.numpy)
            images.append(scene.image)
            held.append(Described(frozenset((o.shape, o.colour) for o in scene.objects), scene.background))
            captions.append(caption)
            said.append(described)
            obj = scene.objects[rng.numpy.integers(len(scene.objects))]
            images.append(loose_crop(scene.image, obj.box, rng.numpy))
            held.append(Described(frozenset({(obj.shape, obj.colour)}), scene.background))
            captions.append(obj.caption)
            said.append(Described(frozenset({(obj.shape, obj.colour)}), None))
        out = self.model(input_ids=self.texts(captions), pixel_values=clip_batch(images))
        target = positives(held, said)
        logits = out.logits_per_image
        to_text = -(F.log_softmax(logits, dim=1) * target / target.sum(1, keepdim=True)).sum(1).mean()
        to_image = -(F.log_softmax(logits.T, dim=1) * target.T / target.T.sum(1, keepdim=True)).sum(1).mean()
        return (to_text + to_image) / 2


def clip_accuracy(model: CLIPModel, tokenizer: ClipTokenizer, pool: ScenePool, rng: np.random.Generator) -> float:
    """A binding check: the share of pool scenes where one held object's caption ("a red circle")
    scores above the same shape in a colour the scene does not hold."""
    from .scenes import COLOUR_NAMES

    right = 0
    model.eval()
    with torch.no_grad():
        for scene in pool.scenes:
            obj = scene.objects[rng.integers(len(scene.objects))]
            held = {(o.shape, o.colour) for o in scene.objects}
            wrong = [c for c in COLOUR_NAMES if (obj.shape, c) not in held]
            other = wrong[rng.integers(len(wrong))]
            ids = torch.tensor(np.stack([tokenizer.encode(templated(f"a {c} {obj.shape}")).ids for c in (obj.colour, other)]))
            out = model(input_ids=ids, pixel_values=clip_batch([scene.image]))
            right += int(out.logits_per_image[0, 0] > out.logits_per_image[0, 1])
    return right / len(pool.scenes)
