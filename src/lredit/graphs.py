"""Graph names: the stable keys shared by specs, bundle files, sessions, feeds and timers."""

from __future__ import annotations

PIPELINE_GRAPHS = ("dino", "rgn", "clip_text", "clip_vision", "sd_text", "unet", "vae_encoder", "vae_decoder")
"""The graphs an edit runs; a bundle must hold all of them."""
OPTIONAL_GRAPHS = ("rgn_roi",)
"""Exported only on request (lr-export --graphs rgn_roi): projection, proposals, ONNX RoiAlign
and the RGN head in one graph, for ONNX Runtime / TensorRT users without the CUDA kernel."""
ALL_GRAPHS = (*PIPELINE_GRAPHS, *OPTIONAL_GRAPHS)


class Outputs:
    """Graph output names. export/specs declare each graph's outputs with these and the runtime
    reads the outputs by them (the runtime may not import export: the names live here)."""

    FEATURES = "features"
    """dino: patch tokens after the final LayerNorm [B, P, D]."""
    SALIENCY = "saliency"
    """dino: last block's CLS attention, mean over heads [B, P]."""
    LOG_PROBS = "log_probs"
    """rgn, rgn_roi: box-size log-probabilities [K, M]."""
    TEXT_EMBEDS = "text_embeds"
    """clip_text: projected text embedding [B, d]."""
    IMAGE_EMBEDS = "image_embeds"
    """clip_vision: projected image embedding [B, d]."""
    TOKENS = "tokens"
    """clip_vision: penultimate-block residual stream, [CLS] + patches (the structure loss's input)."""
    HIDDEN_STATES = "hidden_states"
    """sd_text: the UNet's text context [B, 77, D]."""
    NOISE_PRED = "noise_pred"
    """unet: predicted noise [B, 4, h, w]."""
    LATENTS = "latents"
    """vae_encoder: scaled posterior mean [B, 4, h, w]."""
    IMAGES = "images"
    """vae_decoder: decoded images in about [-1, 1] [B, 3, H, W]."""


GRAPH_OUTPUTS = {
    "dino": (Outputs.FEATURES, Outputs.SALIENCY),
    "rgn": (Outputs.LOG_PROBS,),
    "rgn_roi": (Outputs.LOG_PROBS,),
    "clip_text": (Outputs.TEXT_EMBEDS,),
    "clip_vision": (Outputs.IMAGE_EMBEDS, Outputs.TOKENS),
    "sd_text": (Outputs.HIDDEN_STATES,),
    "unet": (Outputs.NOISE_PRED,),
    "vae_encoder": (Outputs.LATENTS,),
    "vae_decoder": (Outputs.IMAGES,),
}
"""Graph -> its output names in order (what each spec declares; tests/export hold them equal)."""
