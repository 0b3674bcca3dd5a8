"""The one way lredit imports TensorRT (the export's engine builder and the runtime both ask)."""

from __future__ import annotations

from .errors import LreditError


def require_tensorrt(error: type[LreditError], advice: str, *, allow_rtx: bool = False):
    """The `tensorrt` module (or, with allow_rtx, `tensorrt_rtx`: it builds engines ahead of time
    without a GPU), else `error("TensorRT is not installed: <advice>")`."""
    try:
        import tensorrt

        return tensorrt
    except ImportError:
        pass
    if allow_rtx:
        try:
            import tensorrt_rtx

            return tensorrt_rtx
        except ImportError:
            pass
    raise error(f"TensorRT is not installed: {advice}")
