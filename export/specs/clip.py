from lredit.export import wrappers
from lredit.graphs import Outputs

from .base import Axis, GraphSpec, Tensor, Tolerance

TEXT_SPEC = GraphSpec(
    name="clip_text",
    inputs=(Tensor("input_ids", ("batch", "text_len"), dtype="int64", fill="ids"),),
    outputs=(Tensor(Outputs.TEXT_EMBEDS, ("batch", "proj")),),
    axes=(Axis("batch", 1, 1, 4),),
    wrap=lambda m, s: wrappers.ClipTextGraph(m.clip),
    static_sizes=lambda m, s: {"text_len": 77, "proj": m.clip.config.projection_dim},
    tolerance={"fp32": Tolerance(1e-4, 1e-4), "fp16": Tolerance(3e-2, 3e-2)},
)

VISION_SPEC = GraphSpec(
    name="clip_vision",
    inputs=(Tensor("pixels", ("batch", 3, "image", "image")),),
    # tokens: penultimate-block residual stream, [CLS] + P patches (the structure loss's input).
    outputs=(Tensor(Outputs.IMAGE_EMBEDS, ("batch", "proj")), Tensor(Outputs.TOKENS, ("batch", "vision_tokens", "vision_dim"))),
    axes=(Axis("batch", 1, 10, 17),),
    wrap=lambda m, s: wrappers.ClipVisionGraph(m.clip),
    static_sizes=lambda m, s: {
        "image": m.clip.config.vision_config.image_size,
        "proj": m.clip.config.projection_dim,
        "vision_tokens": 1 + (m.clip.config.vision_config.image_size // m.clip.config.vision_config.patch_size) ** 2,
        "vision_dim": m.clip.config.vision_config.hidden_size,
    },
    tolerance={"fp32": Tolerance(1e-4, 1e-4), "fp16": Tolerance(3e-2, 3e-2)},
    notes="batch = K candidates + the source image; tokens = output of all but the last encoder layer (no LayerNorm)",
)

SD_TEXT_SPEC = GraphSpec(
    name="sd_text",
    inputs=(Tensor("input_ids", ("batch", "text_len"), dtype="int64", fill="ids"),),
    outputs=(Tensor(Outputs.HIDDEN_STATES, ("batch", "text_len", "context")),),
    axes=(Axis("batch", 1, 2, 2),),
    wrap=lambda m, s: wrappers.SdTextGraph(m.sd_text_encoder),
    static_sizes=lambda m, s: {"text_len": 77, "context": m.sd_text_encoder.config.hidden_size},
    tolerance={"fp32": Tolerance(1e-4, 1e-4), "fp16": Tolerance(3e-2, 3e-2)},
    notes="batch 2 = (negative, prompt)",
)
