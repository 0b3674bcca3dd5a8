"""lredit: mask-free, text-driven image editing via learnable regions, optimized for inference.

Subpackages: lredit.engine (runtime and torch reference), lredit.export (ONNX/TensorRT bundles),
lredit.kernels (fused ROI pool), lredit.bench (latency benchmarks).
"""

__version__ = "0.1.0"
