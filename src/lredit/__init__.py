"""lredit: mask-free, text-driven image editing via learnable regions, optimized for inference.

Subpackages: lredit.engine (runtime and torch reference, in rooms: ops, regions, core, training,
runtimes, frontends), lredit.export (ONNX/TensorRT bundles), lredit.kernels (fused ROI pool),
lredit.bench (latency benchmarks), lredit.serve (lr-serve, the HTTP service).
"""

__version__ = "0.1.0"
