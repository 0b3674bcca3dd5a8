"""Thin torch modules that fix each graph's forward signature (names as in the specs).

They are what gets exported and what the torch backend runs, so the reference and the exported
graphs compute the same function.
"""

from __future__ import annotations

import torch
from torch import nn


class DinoGraph(nn.Module):
    """pixels [B, 3, S, S] -> features [B, h*w, d] (after the final LayerNorm), saliency [B, h*w]
    (last block's [CLS] attention over patches, mean over heads)."""

    def __init__(self, vit: nn.Module, image_size: int):
        super().__init__()
        if getattr(vit.config, "_attn_implementation", "eager") != "eager":
            raise ValueError("DINO must use attn_implementation='eager': sdpa returns no attentions")
        self.vit = vit
        self.interpolate = image_size != vit.config.image_size

    def forward(self, pixels: torch.Tensor):
        out = self.vit(pixel_values=pixels, output_attentions=True, interpolate_pos_encoding=self.interpolate)
        if not out.attentions:
            raise RuntimeError("DINO returned no attention maps")
        features = out.last_hidden_state[:, 1:, :]
        saliency = out.attentions[-1][:, :, 0, 1:].mean(dim=1)
        return features, saliency


class RgnGraph(nn.Module):
    """pooled [K, M*c, l, l] -> log_probs [K, M]."""

    def __init__(self, region_net: nn.Module):
        super().__init__()
        self.region_net = region_net

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.region_net(pooled)


class ClipTextGraph(nn.Module):
    """input_ids [B, 77] -> text_embeds [B, p] (projected, not normalised)."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.text_model, self.projection = clip.text_model, clip.text_projection

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.text_model(input_ids=input_ids).pooler_output)


class ClipVisionGraph(nn.Module):
    """pixels [B, 3, 224, 224] -> image_embeds [B, p] (projected, not normalised)."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.vision_model, self.projection = clip.vision_model, clip.visual_projection

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projection(self.vision_model(pixel_values=pixels).pooler_output)


class SdTextGraph(nn.Module):
    """input_ids [B, 77] -> hidden_states [B, 77, D] (the UNet's cross-attention context)."""

    def __init__(self, text_encoder: nn.Module):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids=input_ids).last_hidden_state


class UnetGraph(nn.Module):
    """sample [B, 9, h, w], timestep [B], encoder_hidden_states [B, 77, D] -> noise_pred [B, 4, h, w]."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]


class VaeEncoderGraph(nn.Module):
    """images [B, 3, H, W] in [-1, 1] -> latents [B, 4, H/8, W/8]: posterior mean x scaling factor."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae
        self.scale = float(vae.config.scaling_factor)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(images).latent_dist.mean * self.scale


class VaeDecoderGraph(nn.Module):
    """latents [B, 4, h, w] (scaled) -> images [B, 3, 8h, 8w] in about [-1, 1]."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae
        self.scale = float(vae.config.scaling_factor)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.scale, return_dict=False)[0]
