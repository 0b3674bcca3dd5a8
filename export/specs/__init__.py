"""Registry of graph specs: the only place graph knowledge lives."""

from .base import Axis, ExportSettings, GraphSpec, Tensor, Tolerance
from .clip import SD_TEXT_SPEC, TEXT_SPEC, VISION_SPEC
from .dino import SPEC as DINO_SPEC
from .rgn import ROI_SPEC, SPEC as RGN_SPEC
from .sd import UNET_SPEC, VAE_DECODER_SPEC, VAE_ENCODER_SPEC

SPECS: dict[str, GraphSpec] = {
    s.name: s
    for s in (DINO_SPEC, RGN_SPEC, ROI_SPEC, TEXT_SPEC, VISION_SPEC, SD_TEXT_SPEC, UNET_SPEC, VAE_ENCODER_SPEC, VAE_DECODER_SPEC)
}
# The graphs the pipeline needs; rgn_roi is an alternative to rgn + host-side pooling.
PIPELINE_GRAPHS = ("dino", "rgn", "clip_text", "clip_vision", "sd_text", "unet", "vae_encoder", "vae_decoder")

__all__ = ["Axis", "ExportSettings", "GraphSpec", "Tensor", "Tolerance", "SPECS", "PIPELINE_GRAPHS"]
