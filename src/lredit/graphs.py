"""Graph names: the stable keys shared by specs, bundle files, sessions, feeds and timers."""

from __future__ import annotations

PIPELINE_GRAPHS = ("dino", "rgn", "clip_text", "clip_vision", "sd_text", "unet", "vae_encoder", "vae_decoder")
"""The graphs an edit runs; a bundle must hold all of them."""
OPTIONAL_GRAPHS = ("rgn_roi",)
"""Exported only on request (lr-export --graphs rgn_roi): projection, proposals, ONNX RoiAlign
and the RGN head in one graph, for ONNX Runtime / TensorRT users without the CUDA kernel."""
ALL_GRAPHS = (*PIPELINE_GRAPHS, *OPTIONAL_GRAPHS)
