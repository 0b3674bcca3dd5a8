"""Errors a user can act on. Every one derives from `LreditError`; the CLIs print its message on
one line and exit 2 (see lredit.cli)."""


class LreditError(Exception):
    """Base class: the message says what was wrong and what to do."""


class InputError(LreditError, ValueError):
    """A bad argument or input file (image, prompt, config value)."""


class ModelSourceError(LreditError):
    """Model weights or folders missing, incomplete or of the wrong layout."""


class BundleError(LreditError):
    """An exported bundle is missing files, corrupt, of another format version, or names a file
    outside its own folder."""


class NumericalError(LreditError):
    """A stage produced NaN or Inf (typically fp16 overflow)."""


class OutputError(LreditError):
    """The output location cannot be written."""


class ExportError(LreditError):
    """An export or an engine build failed; the message lists what and why."""


class KernelBuildError(LreditError):
    """NVRTC or nvcc rejected the CUDA source; the message carries its log."""


class BackendUnavailableError(LreditError):
    """A backend cannot run on this machine (no GPU, no TensorRT, no bundle); the message says
    why. lr-bench records it instead of failing the whole run."""
