"""Architecture configs of the random presets. Weights come from the caller's seeded RNG."""

from __future__ import annotations

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel, ViTConfig, ViTModel

_TOKENS = dict(vocab_size=49408, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)


def _vit(**kw) -> ViTModel:
    config = ViTConfig(patch_size=8, image_size=224, qkv_bias=True, **kw)
    config._attn_implementation = "eager"  # sdpa returns no attention maps; saliency needs them
    return ViTModel(config, add_pooling_layer=False)


def tiny(unet_in: int = 9) -> dict:
    """`unet_in` 9: an inpainting UNet; 4: a text-to-image one (sd-blend)."""
    dino = _vit(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    clip = CLIPModel(
        CLIPConfig(
            text_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **_TOKENS),
            vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                               image_size=224, patch_size=16),
            projection_dim=16,
        )
    )
    text = CLIPTextModel(
        CLIPTextConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       hidden_act="quick_gelu", **_TOKENS)
    )
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=unet_in,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=512,
    )
    return dict(dino=dino, clip=clip, sd_text_encoder=text, unet=unet, vae=vae)


def full_random(unet_in: int = 9) -> dict:
    """`unet_in` 9: SD 1.5 inpainting's UNet; 4: SD 1.5's text-to-image one (sd-blend)."""
    dino = _vit(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    clip = CLIPModel(
        CLIPConfig(
            text_config=dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048,
                             **_TOKENS),
            vision_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                               image_size=224, patch_size=16),
            projection_dim=512,
        )
    )
    text = CLIPTextModel(
        CLIPTextConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                       hidden_act="quick_gelu", projection_dim=768, **_TOKENS)
    )
    unet = UNet2DConditionModel(sample_size=64, in_channels=unet_in, out_channels=4, cross_attention_dim=768)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
    )
    return dict(dino=dino, clip=clip, sd_text_encoder=text, unet=unet, vae=vae)
