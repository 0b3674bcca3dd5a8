"""Version reporting for reports, manifests and benchmark records."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

# Distribution -> the module whose presence in sys.modules says this process uses it.
_REPORTED = {
    "lredit": "lredit",
    "numpy": "numpy",
    "pillow": "PIL",
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime",
    "tokenizers": "tokenizers",
    "torch": "torch",
    "diffusers": "diffusers",
    "transformers": "transformers",
    "tensorrt": "tensorrt",
}
_ALWAYS = ("lredit", "numpy", "pillow")


def versions() -> dict:
    """Python and the installed versions of what this process actually uses (so a torch-free run
    says so)."""
    found = {"python": platform.python_version()}
    for dist, module in _REPORTED.items():
        if module not in sys.modules and dist not in _ALWAYS:
            continue
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found
