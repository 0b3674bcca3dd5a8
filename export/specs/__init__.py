"""Registry of graph specs: the only place graph knowledge lives."""

from lredit.graphs import ALL_GRAPHS

from .base import GRAPH_GEOMETRY, Axis, ExportSettings, GraphSpec, Tensor, Tolerance
from .clip import SD_TEXT_SPEC, TEXT_SPEC, VISION_SPEC
from .dino import SPEC as DINO_SPEC
from .rgn import ROI_SPEC
from .rgn import SPEC as RGN_SPEC
from .sd import UNET_SPEC, VAE_DECODER_SPEC, VAE_ENCODER_SPEC

_DECLARED = (DINO_SPEC, RGN_SPEC, ROI_SPEC, TEXT_SPEC, VISION_SPEC, SD_TEXT_SPEC, UNET_SPEC, VAE_ENCODER_SPEC, VAE_DECODER_SPEC)
# Keyed and ordered by the graph names of lredit.graphs (tests/test_export.py checks one spec each).
SPECS: dict[str, GraphSpec] = {s.name: s for name in ALL_GRAPHS for s in _DECLARED if s.name == name}
__all__ = ["GRAPH_GEOMETRY", "Axis", "ExportSettings", "GraphSpec", "Tensor", "Tolerance", "SPECS"]
