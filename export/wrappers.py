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
    """pixels [B, 3, 224, 224] -> image_embeds [B, p] (projected, not normalised) and tokens
    [B, 1+P, D]: the residual stream after all but the last encoder layer, [CLS] first, no
    LayerNorm applied (the authors' `transformer_first_blocks_forward`: ln_pre, resblocks[:-1]),
    which the structure loss compares. The same as transformers' `hidden_states[-2]`; the layers
    are run one by one so the graph computes the last layer once, from these tokens."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.vision_model, self.projection = clip.vision_model, clip.visual_projection

    def forward(self, pixels: torch.Tensor):
        vision = self.vision_model
        hidden = vision.pre_layrnorm(vision.embeddings(pixels))
        *first, last = vision.encoder.layers
        for layer in first:
            hidden = layer(hidden, None)
        tokens = hidden
        pooled = vision.post_layernorm(last(hidden, None)[:, 0, :])
        return self.projection(pooled), tokens


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


class _RoiAlign(torch.autograd.Function):
    """ROI-align that exports as the standard ONNX RoiAlign (aligned=False, avg, adaptive
    sampling). Eager values come from the numpy reference (this path is only traced)."""

    @staticmethod
    def forward(ctx, features, rois, output_size: int):
        from lredit.kernels.roi_pool_ref import roi_align

        out = roi_align(features[0].detach().cpu().numpy(), rois.detach().cpu().numpy(), output_size)
        return torch.from_numpy(out).to(features.dtype)

    @staticmethod
    def symbolic(g, features, rois, output_size: int):
        zeros = g.op("ConstantOfShape", g.op("Gather", g.op("Shape", rois), g.op("Constant", value_t=torch.tensor([0]))),
                     value_t=torch.tensor([0], dtype=torch.int64))
        return g.op(
            "RoiAlign", features, rois, zeros, mode_s="avg", output_height_i=output_size, output_width_i=output_size,
            sampling_ratio_i=0, spatial_scale_f=1.0, coordinate_transformation_mode_s="output_half_pixel",
        )


class RgnRoiGraph(nn.Module):
    """features [1, h*w, d], anchors [K, 2] (x, y cells) -> log_probs [K, M]: projection,
    proposals clamped to the map, ROI-align and the RGN head in one graph."""

    def __init__(self, region_net: nn.Module, half_sizes, grid):
        super().__init__()
        self.region_net = region_net
        self.grid = tuple(grid)
        self.register_buffer("half_sizes", torch.tensor(half_sizes, dtype=torch.float32).view(1, -1, 1), persistent=False)

    def forward(self, features: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        rows, cols = self.grid
        dim = features.shape[-1]
        fmap = features.transpose(1, 2).reshape(1, dim, rows, cols)
        projected = self.region_net.projection(fmap)
        centre = anchors.unsqueeze(1)  # [K, 1, 2]
        lo = torch.clamp(centre - self.half_sizes, min=0.0)
        hi = torch.minimum(centre + self.half_sizes, torch.tensor([cols - 1.0, rows - 1.0]))
        boxes = torch.cat([lo, hi], dim=-1).reshape(-1, 4)  # [K*M, 4]
        pooled = _RoiAlign.apply(projected, boxes, self.region_net.roi_size)
        k = anchors.shape[0]
        return self.region_net(pooled.reshape(k, -1, pooled.shape[-2], pooled.shape[-1]))
